"""Customer journeys: pricing, claims, the steps of one NPC, sampling and the runner."""

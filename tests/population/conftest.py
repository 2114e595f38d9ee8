"""Samples shared by the population tests: generated in memory once per session."""

import pytest

from willow_core.population.generator import build_profile
from willow_core.population.report import PopulationSample, generate_sample

SAMPLE_SIZE = 100_000


@pytest.fixture(scope="session")
def sample() -> PopulationSample:
    """100,000 NPCs with their pets, generated with the default settings."""
    return generate_sample(build_profile(), SAMPLE_SIZE, seed=20_261_204)

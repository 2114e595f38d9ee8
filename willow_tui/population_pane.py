"""The population pane: progress, throughput and log of the current generation run."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Sparkline, Static

from willow_core.store.runs import RunProgress, RunState
from willow_core.units import format_count, format_duration

STATE_STYLES = {
    RunState.RUNNING: "bold green",
    RunState.PAUSING: "bold yellow",
    RunState.PAUSED: "yellow",
    RunState.FINISHED: "bold cyan",
    RunState.CRASHED: "bold red",
}


class PopulationPane(Vertical):
    """Shows one generation run: counts, target, progress bar, throughput, ETA, state and log."""

    DEFAULT_CSS = """
    PopulationPane {
        border: round $primary;
        border-title-style: bold;
        padding: 0 1;
        height: 1fr;
        width: 1fr;
    }
    PopulationPane #population-status { height: auto; }
    PopulationPane #population-error { color: $error; height: auto; }
    PopulationPane #population-error.-hidden { display: none; }
    PopulationPane ProgressBar { margin: 1 0 0 0; }
    PopulationPane #population-rate { height: auto; margin: 1 0 0 0; }
    PopulationPane Sparkline { height: 3; margin: 0 0 1 0; }
    PopulationPane #population-log-title { color: $text-muted; }
    PopulationPane #population-log { height: 1fr; color: $text-muted; }
    """

    def __init__(self, *, database: str, host: str, id: str | None = "population") -> None:
        super().__init__(id=id)
        self._database = database
        self._host = host
        self.border_title = "Population"
        self.border_subtitle = f"{database} · generator on {host}"

    def compose(self) -> ComposeResult:
        yield Static("Connecting to the population database…", id="population-status")
        yield Static("", id="population-error", classes="-hidden")
        yield ProgressBar(total=None, show_eta=False, id="population-progress")
        yield Static("", id="population-rate")
        yield Sparkline([], summary_function=max, id="population-throughput")
        yield Static("Generator log", id="population-log-title")
        yield Static("", id="population-log", markup=False)

    def show_progress(self, progress: RunProgress | None, log_lines: list[str]) -> None:
        """Render a run's progress (None: no run yet) and its log tail; clears any error."""
        self._set_error(None)
        status = self.query_one("#population-status", Static)
        bar = self.query_one("#population-progress", ProgressBar)
        rate = self.query_one("#population-rate", Static)
        sparkline = self.query_one("#population-throughput", Sparkline)

        if progress is None:
            status.update("No generation run yet. Press [b]s[/b] to start one.")
            bar.update(total=None, progress=0)
            rate.update("")
            sparkline.data = []
            self.query_one("#population-log", Static).update("")
            return

        run = progress.run
        state = Text(str(progress.state), style=STATE_STYLES[progress.state])
        summary = Text.assemble(
            (f"Run {run.run_id}", "bold"),
            f" · seed {run.seed} · batches of {format_count(run.batch_size)}\n",
            "State ",
            state,
            f" · {progress.live_workers} live worker{'s' if progress.live_workers != 1 else ''}\n",
            ("Customers ", "bold"),
            f"{format_count(progress.customers)} of {format_count(run.total)}",
            ("   Pets ", "bold"),
            format_count(progress.pets),
        )
        if progress.state is RunState.CRASHED:
            reason = progress.last_exit_reason or "no live worker and no recent heartbeat"
            summary.append(f"\nWorkers stopped: {reason}. Press r to resume.", style="red")
        status.update(summary)
        bar.update(total=run.total, progress=progress.customers)

        eta = progress.eta_seconds
        customers_per_second = f"{format_count(round(progress.rate))} customers/s"
        if progress.state in (RunState.RUNNING, RunState.PAUSING):
            throughput = Text.assemble(
                ("Throughput ", "bold"),
                customers_per_second,
                ("   ETA ", "bold"),
                format_duration(eta) if eta is not None else "-",
            )
            window = "Last 60 s:"
        else:
            # A stopped run shows the throughput it had before its last commit.
            throughput = Text.assemble(
                ("Throughput ", "bold"), f"- ({progress.state}; it was {customers_per_second})"
            )
            window = "60 s before the last commit:"
        throughput.append(f"\n{window}", style="dim")
        rate.update(throughput)
        sparkline.data = list(progress.history)
        log_text = "\n".join(log_lines) if log_lines else "(no worker log yet)"
        self.query_one("#population-log", Static).update(log_text)

    def show_error(self, message: str) -> None:
        """Show a failure (for example an unreachable database) above the last known figures."""
        self._set_error(message)

    def _set_error(self, message: str | None) -> None:
        error = self.query_one("#population-error", Static)
        if message is None:
            error.add_class("-hidden")
            error.update("")
        else:
            error.remove_class("-hidden")
            error.update(Text(message))

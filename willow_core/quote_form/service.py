"""Quote form operations shared by the `willow` CLI and the TUI.

`QuoteFormService` reads the form file anew for every operation, so an edited file takes effect
at the next validation. Validation runs on two connections of its own (one reads ahead while the
other writes), so the control room's shared connection stays free for the panes' polls while a
long validation runs. Every method blocks; the TUI calls them from worker threads.
"""

import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path

from willow_core.control import ControlRoom
from willow_core.milestones import MilestoneStatus, milestone_statuses
from willow_core.quote_form.compiler import CompiledForm
from willow_core.quote_form.reports import (
    CoverageReport,
    FailureLog,
    NpcRecord,
    coverage_report,
    load_npc_record,
    read_failure_log,
)
from willow_core.quote_form.spec import FormSpec, load_form_spec
from willow_core.quote_form.validation import (
    Selection,
    ValidationProgress,
    ValidationSummary,
    Validator,
)
from willow_core.store.db import connect

log = logging.getLogger("willow.quote_form.service")


class QuoteFormService:
    """Validation, failure log, coverage, NPC records and milestones over one ControlRoom."""

    def __init__(self, room: ControlRoom) -> None:
        self.room = room
        self.settings = room.settings.quote_form

    def form_path(self) -> Path | None:
        """Return the configured form file, resolved against the config file's directory;
        None means the shipped default form."""
        path = self.settings.path
        if path is None:
            return None
        path = path.expanduser()
        source = self.room.settings.source
        if not path.is_absolute() and source is not None:
            path = source.parent / path
        return path

    def load_spec(self) -> FormSpec:
        """Read and check the form file.

        Raises:
            QuoteFormError: the file is missing or invalid.
        """
        return load_form_spec(self.form_path())

    def validate(
        self,
        selection: Selection,
        *,
        as_of: date | None = None,
        on_progress: Callable[[ValidationProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> ValidationSummary:
        """Validate the selected NPCs against the current form file and log the failures.

        Args:
            selection: which NPCs.
            as_of: the day date rules count from; default today.
            on_progress: called after every chunk.
            should_stop: polled between chunks; True stops the validation.

        Raises:
            QuoteFormError: the form file is invalid or does not fit the database.
            StoreError: the database failed.
        """
        spec = self.load_spec()
        with self.room.connection():
            pass  # opens and migrates the database before the dedicated connection uses it
        timeout = self.room.settings.postgres.connect_timeout
        conn = connect(self.room.dsn(), timeout=timeout, autocommit=True)
        try:
            read_conn = connect(self.room.dsn(), timeout=timeout, autocommit=True)
            try:
                validator = Validator(conn, spec, as_of=as_of or date.today(), read_conn=read_conn)
                return validator.run(
                    selection,
                    chunk_size=self.settings.chunk_size,
                    on_progress=on_progress,
                    should_stop=should_stop,
                )
            finally:
                read_conn.close()
        finally:
            conn.close()

    def failure_log(self, filter_text: str = "", limit: int = 500) -> FailureLog:
        """Return the newest failures matching `filter_text`, and the latest counts."""
        with self.room.connection() as conn:
            return read_failure_log(conn, filter_text=filter_text, limit=limit)

    def coverage(self) -> CoverageReport:
        """Return the current form's field coverage from its newest validation.

        Raises:
            QuoteFormError: the form file is invalid.
        """
        spec = self.load_spec()
        with self.room.connection() as conn:
            return coverage_report(conn, spec)

    def npc_record(self, customer_id: int, as_of: date | None = None) -> NpcRecord:
        """Return one NPC, its pets and its quote form answers, validated on `as_of`.

        Raises:
            NpcNotFoundError: no NPC has this id.
            QuoteFormError: the form file is invalid.
        """
        form = CompiledForm(self.load_spec(), as_of or date.today())
        with self.room.connection() as conn:
            return load_npc_record(conn, form, customer_id)

    def milestones(self) -> tuple[int, list[MilestoneStatus]]:
        """Return the population size and each milestone's status."""
        with self.room.connection() as conn:
            return milestone_statuses(conn)

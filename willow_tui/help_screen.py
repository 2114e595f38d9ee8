"""The `?` screen: every key binding of the app, from the bindings themselves."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """Lists the keys and what they do; any of escape, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 100; height: auto; border: round $primary; padding: 1 2; background: $surface;
    }
    """
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close help", id="help.close"),
    ]

    def __init__(self, bindings: list[BindingType]) -> None:
        super().__init__()
        self._listed_bindings = [binding for binding in bindings if isinstance(binding, Binding)]

    def compose(self) -> ComposeResult:
        rows = [
            (", ".join(_key_label(key) for key in binding.key.split(",")), binding)
            for binding in self._listed_bindings
        ]
        width = max((len(keys) for keys, _ in rows), default=0) + 3
        listing = Text()
        for keys, binding in rows:
            listing.append(keys.ljust(width), style="bold")
            listing.append(f"{binding.tooltip or binding.description}\n")
        with Vertical():
            yield Static("[b]Keys[/b]\n")
            yield Static(listing, id="help-keys")
            yield Static("[dim]Escape closes this help.[/dim]")


def _key_label(key: str) -> str:
    return {"question_mark": "?", "escape": "Esc", "enter": "Enter", "slash": "/"}.get(key, key)

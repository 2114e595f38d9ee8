"""The quote form as data, compiled to pydantic, and the validation of NPCs against it.

- `spec`: reads and checks a form file (`default_form.toml` ships with Willow).
- `compiler`: compiles a form into pydantic models and turns pydantic errors into failures.
- `postcode`: UK postcode normalisation and format rules.
- `validation`: streams NPCs from PostgreSQL in chunks and logs failures with COPY.
- `reports`: the failure log, field coverage and single NPC records.
- `service`: the operations the CLI (`cli`) and the TUI call.
"""

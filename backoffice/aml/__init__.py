"""AML: rules as data (TOML), a deterministic rules engine over the event stream, and cases
worked by compliance staff (docs/operations.md, "AML cases")."""

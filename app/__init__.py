"""The robust fine-tuning application: `python -m app <subcommand>`."""

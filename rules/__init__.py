"""The rules (TOML data). A package only so that a wheel carries them as astgen.rules_data."""

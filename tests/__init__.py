"""genlab's tests, one folder per family or layer; shared helpers in tests/helpers/."""

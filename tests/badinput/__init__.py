"""The bad input corpus (tests/data/bad/): hostile files and bodies, each refused with the right 4xx
problem details and nothing stored. `python -m tests.badinput` prints the table; test_corpus.py runs it
in `make test`."""

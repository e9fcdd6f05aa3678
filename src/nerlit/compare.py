"""``python -m nerlit.compare``: runs ``nerlit compare`` (:mod:`nerlit.commands.compare`)."""

if __name__ == "__main__":
    import sys

    from nerlit.commands.cli import main

    main(["compare", *sys.argv[1:]])

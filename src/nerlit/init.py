"""``python -m nerlit.init``: runs ``nerlit init`` (:mod:`nerlit.commands.init`)."""

if __name__ == "__main__":
    import sys

    from nerlit.commands.cli import main

    main(["init", *sys.argv[1:]])

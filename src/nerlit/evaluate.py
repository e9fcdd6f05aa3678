"""``python -m nerlit.evaluate``: runs ``nerlit evaluate`` (:mod:`nerlit.commands.evaluate`)."""

if __name__ == "__main__":
    import sys

    from nerlit.commands.cli import main

    main(["evaluate", *sys.argv[1:]])

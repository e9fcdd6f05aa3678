"""``python -m nerlit.audit``: runs ``nerlit audit`` (:mod:`nerlit.commands.audit`)."""

if __name__ == "__main__":
    import sys

    from nerlit.commands.cli import main

    main(["audit", *sys.argv[1:]])

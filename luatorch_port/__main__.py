"""`python -m luatorch_port` runs the `a2` command line."""

from luatorch_port.cli import main

if __name__ == "__main__":
    main()

"""``python -m anomalia``: the command line (``torchrun -m anomalia fit ... --ddp`` starts it this way)."""

from .cli import main

if __name__ == "__main__":
    main()

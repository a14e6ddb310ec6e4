"""Choose ``text-lm``'s defaults without labels: the held-out normal NLL of each candidate within the CPU budget.

Each candidate (a JSON object of ``TextLM`` parameters) is fitted exactly as ``benchmarks/text.py`` fits it
(seed s: the same 60 % of the ham), then scored on its own calibration texts: the 20 % of that training ham
which the detector held out and never trained on. No spam and no test message is read. Reported: the mean
score there (mean NLL per byte, nats; lower = a better model of normal text), the process CPU seconds of
``fit`` and the epochs run. The rule, fixed before any run: the default is the candidate with the lowest
held-out NLL whose fit takes at most 150 CPU seconds (a margin under the 3-minute bar for a loaded machine).

    nice -n 19 .venv/bin/python benchmarks/text_lm_select.py --seed 0 --params '{"cell": "gru"}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

import anomalia as an
from text import load_sms, split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", action="append", default=[], help="a JSON object of TextLM parameters (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    texts, y = load_sms()
    train, _ = split(y, args.seed)  # the test indices are not used
    normal = texts[train]
    for spec in args.params or ["{}"]:
        params = json.loads(spec)
        det = an.make_detector("text-lm", random_state=args.seed, device="cpu", **params)
        cpu = time.process_time()
        det.fit(normal)
        cpu = time.process_time() - cpu
        held_out = det.calibration_rows_
        nll = det.anomaly_score(held_out)
        hist = det.history_[-1]
        row = {
            "params": params,
            "seed": args.seed,
            "held_out_nll": float(np.mean(nll)),
            "n_held_out": int(held_out.size),
            "fit_cpu_s": round(cpu, 1),
            "epochs": len(hist["train_loss"]),
            "best_epoch": hist["best_epoch"],
        }
        print(json.dumps(row), flush=True)
        print(json.dumps({"val_loss": [round(v, 4) for v in hist["val_loss"]]}), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()

"""What helps the 100-image target task of tl_mnist.py? The lecture's "options we did not
explore", each measured over the same 15 trials (same seeds, same small sets).

    python bench/what_helps.py --data mnist.npz              # every setting below
    python bench/what_helps.py --data mnist.npz --only fine_tune_2,augment

Each setting is one `tl_mnist.py` run (pretraining once, shared through
saved_models/); its results go to bench/results/what_helps/<setting>/ and each run
can be stopped and continued (`--resume` is passed). The table of all settings is
printed and written to bench/results/what_helps.json.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import tl_mnist
from common import files
from common.runs import tables, stats

# Each setting: the flags it changes from the lecture's protocol.
SETTINGS = {
    "lecture": {},
    "lr_0.0003": {"lr": 0.0003},
    "rmsprop": {"optimizer": "rmsprop"},
    "sgd": {"optimizer": "sgd"},
    "fine_tune_1": {"fine_tune": "1"},
    "fine_tune_2": {"fine_tune": "2"},
    "fine_tune_2_long": {"fine_tune": "2", "fine_tune_epochs": 40, "fine_tune_lr": 0.0003},
    "augment": {"augment": True},
    "augment_fine_tune_2": {"augment": True, "fine_tune": "2", "fine_tune_epochs": 40,
                            "fine_tune_lr": 0.0003},
    "augment_epochs_200": {"augment": True, "epochs": 200},
    "augment_fine_tune_2_at_0.001": {"augment": True, "fine_tune": "2", "fine_tune_epochs": 100,
                                     "fine_tune_lr": 0.001},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="mnist.npz in Keras's layout")
    parser.add_argument("--only", default="all", help="comma-separated settings: "
                        + ", ".join(SETTINGS) + " (none: only the table of what is measured)")
    parser.add_argument("--trials", type=int, default=15)
    args = parser.parse_args()
    names = {"all": list(SETTINGS), "none": []}.get(args.only, args.only.split(","))
    here = os.path.dirname(os.path.abspath(__file__))
    folder = os.path.join(here, "results", "what_helps")
    for name in names:
        tl_mnist.main(tl_mnist.Config(data=args.data, dataset="mnist", trials=args.trials,
                                      out=os.path.join(folder, name), resume=True,
                                      **SETTINGS[name]))

    # The table of every setting measured so far (also by earlier runs of this script).
    rows = {}
    for name in SETTINGS:
        path = os.path.join(folder, name, "tl_mnist.json")
        if os.path.isfile(path):
            with open(path) as file:
                payload = json.load(file)
            rows[name] = {key: payload[key] for key in (
                "training", "summary", "comparisons", "complete", "timings_s", "device",
                "accuracies", "trial_seeds")}
            rows[name]["flags"] = SETTINGS[name]
    print("\nwhat helps: mean ± std test accuracy (%) over the trials [95% CI of the mean]\n")
    print("| setting | flags | no transfer | transfer | transfer + fine-tune | its last transfer "
          "option vs the lecture's transfer, same seeds |")
    print("| --- | --- | --- | --- | --- | --- |")

    def by_seed(row: dict, option: str) -> dict[int, float]:
        return dict(zip(row["trial_seeds"][option], row["accuracies"][option]))

    for name, row in rows.items():
        last = list(row["summary"])[-1]  # "transfer + fine-tune" if there is one
        gain = stats.compare("lecture transfer", last, by_seed(rows["lecture"], "transfer"),
                             by_seed(row, last)) if "lecture" in rows else None
        cells = [f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f} [{100 * s['ci95'][0]:.1f}–"
                 f"{100 * s['ci95'][1]:.1f}]" if s else "—"
                 for s in (row["summary"].get(option) for option in tl_mnist.OPTIONS)]
        flags = " ".join(f"--{key.replace('_', '-')}" + ("" if value is True else f" {value}")
                         for key, value in row["flags"].items()) or "(the lecture's)"
        versus = (f"{100 * gain['mean_difference']:+.2f} points, paired p = "
                  f"{stats.format_p(gain['paired_p_value'])}" if gain else "—")
        print(f"| {name} | `{flags}` | " + " | ".join(cells) + f" | {versus} |")
    files.atomic_write_json(os.path.join(here, "results", "what_helps.json"),
                         {"trials": args.trials, "data": args.data,
                          "environment": tables.environment(), "settings": rows})


if __name__ == "__main__":
    main()

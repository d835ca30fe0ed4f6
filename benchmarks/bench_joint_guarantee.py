"""The no-harm certificate (multi-risk Learn-then-Test) on synthetic and real data.

Usage::

    python benchmarks/bench_joint_guarantee.py                 # everything
    python benchmarks/bench_joint_guarantee.py --part xstest   # XSTest only
    python benchmarks/bench_joint_guarantee.py --quick         # fewer draws/splits

Three parts:

1. ``synthetic``: populations whose true risks are known in closed form (the
   signal is uniform; probe and expert are right with probabilities linear in the
   signal), many seeded calibration draws. For every testing design of the issue
   (order by the optimisation split's estimated p-values = Pareto Testing; order
   by threshold; one candidate; Bonferroni; the betting and Hoeffding-Bentkus
   p-values instead of the sign test; a small epsilon > 0; the one-standard-error
   pick) it measures the violation rate (a certified constraint false at the
   chosen threshold), the share of draws that delegate, and the true accuracy
   gain over the probe.
2. ``xstest``: XSTest v2 (450 prompts) with five models' refusals as experts;
   5-fold cross-fitted safety probe and DV probe on SmolLM2 activations (the
   cached ``act_xstest.npy`` of ``benchmarks/reproduce_paper.py``); random 50/50
   calibration/evaluation splits; per expert and budget: the share of splits in
   which the cascade's accuracy on the evaluation half is below probe-only by more
   than 1/n_eval, the mean accuracy and AUROC gain over probe-only and the mean
   realised delegation rate, plain CTD next to CTD with ``harm <= 0``.
3. ``high_stakes``: the same on the high-stakes data with the SmolLM2 judge as
   expert (probe on train, DV probe on dev, test pool split 50/50), when the
   judge's cached scores ``judge_hs_dev.npy`` and ``judge_hs_test.npy`` exist.

Writes ``benchmarks/results/joint_guarantee.md`` (real data, the default design)
and ``benchmarks/results/joint_guarantee_design.md`` (all designs); a run of one
part (``--part``) keeps the other parts' saved results
(``benchmarks/results/joint_guarantee.json``) and replaces its own. The real-data
parts skip with a message when ``../shared/data`` or the cached activations are
missing.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from skctd import delegation_value
from skctd.calibration import Risk, calibrate_budget_sweep, opt_test_split

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
XSTEST_EXPERTS = ("gpt4", "mistralguard", "llama2new", "mistralinstruct", "llama2orig")
ALPHAS = np.array([0.1, 0.2, 0.3, 0.5])
DELTA = 0.1
N_FOLDS = 5
SEED = 0

#: The designs compared; "harm0" is the default (Pareto Testing order, sign test).
DESIGNS = {
    "plain CTD": {},
    "plain CTD, one-SE pick": {"selection": "one_se"},
    "harm<=0 (default: p-value order, sign test)": {"constraints": {"harm": 0.0}},
    "harm<=0, threshold order": {
        "constraints": {"harm": 0.0},
        "testing_order": "lambda",
    },
    "harm<=0, one candidate": {"constraints": {"harm": 0.0}, "testing_order": "single"},
    "harm<=0, Bonferroni": {"constraints": {"harm": 0.0}, "fwer": "bonferroni"},
    "harm<=0, betting p-value": {"constraints": [Risk("harm", 0.0, pvalue="wsr")]},
    "harm<=0, Hoeffding-Bentkus": {"constraints": [Risk("harm", 0.0, pvalue="hb")]},
    "harm<=0, one-SE pick": {"constraints": {"harm": 0.0}, "selection": "one_se"},
    "harm<=0.01": {"constraints": {"harm": 0.01}},
    "harm<=0.02": {"constraints": {"harm": 0.02}},
}
DEFAULT = "harm<=0 (default: p-value order, sign test)"


def harm_level(kwargs) -> float | None:
    c = kwargs.get("constraints")
    if c is None:
        return None
    return float(c["harm"]) if isinstance(c, dict) else float(c[0].level)


def calibrate(s, y, p, e, splits, kwargs, alphas=ALPHAS):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calibrate_budget_sweep(
            s,
            y,
            p,
            e,
            alphas=alphas,
            delta=DELTA,
            splits=splits,
            random_state=SEED,
            **kwargs,
        )


# ------------------------------------------------------------------ synthetic
class Population:
    """S ~ U(0, 1); y ~ Bernoulli(0.4) independent of S; probe and expert right
    with probabilities a + b s (independently given s); hard-ish scores."""

    def __init__(self, name, probe=(0.8, 0.0), expert=(0.5, 0.4), pi=0.4):
        self.name, self.probe, self.expert, self.pi = name, probe, expert, pi

    def draw(self, n, rng):
        s = rng.uniform(size=n)
        y = (rng.uniform(size=n) < self.pi).astype(int)
        rp = rng.uniform(size=n) < self.probe[0] + self.probe[1] * s
        re = rng.uniform(size=n) < self.expert[0] + self.expert[1] * s
        p = np.where(np.where(rp, y, 1 - y) == 1, 0.75, 0.25)
        e = np.where(np.where(re, y, 1 - y) == 1, 0.9, 0.1)
        return s, y, p, e

    def budget(self, lam):
        return 1.0 - np.clip(lam, 0.0, 1.0)

    def harm(self, lam):
        """True excess error of the cascade over the probe: int_lam^1 (c_p - c_e)."""
        lo = np.clip(lam, 0.0, 1.0)
        a = self.probe[0] - self.expert[0]
        b = self.probe[1] - self.expert[1]
        return a * (1 - lo) + b * (1 - lo**2) / 2


POPULATIONS = [
    Population("strong expert (0.95 vs 0.80)", expert=(0.95, 0.0)),
    Population("expert good at high signal (0.3 + 0.7 s)", expert=(0.3, 0.7)),
    Population("expert good on top 20 % (0.4 + 0.5 s)", expert=(0.4, 0.5)),
    Population("useless expert (0.5)", expert=(0.5, 0.0)),
]


def run_synthetic(n_draws, sizes):
    rows = []
    for pop in POPULATIONS:
        for n in sizes:
            rng = np.random.default_rng(1000 + n)
            s, y, p, e = pop.draw(n * n_draws, rng)
            n_opt = int(math.floor(0.3 * n + 0.5))
            splits = [
                (b + np.arange(n_opt), b + np.arange(n_opt, n))
                for b in range(0, n * n_draws, n)
            ]
            best = float(-pop.harm(np.linspace(0, 1, 2001)).min())
            for design, kw in DESIGNS.items():
                t0 = time.perf_counter()
                res = calibrate(s, y, p, e, splits, kw)
                lam = res.thresholds
                eps = harm_level(kw)
                harm = pop.harm(lam)
                viol = pop.budget(lam) > ALPHAS[None, :]
                if eps is not None:
                    viol |= harm > eps + 1e-12
                viol &= res.n_certified > 0
                for j, a in enumerate(ALPHAS):
                    rows.append(
                        {
                            "population": pop.name,
                            "n_cal": n,
                            "design": design,
                            "alpha": float(a),
                            "violation": float(viol[:, j].mean()),
                            "delegates": float(np.isfinite(lam[:, j]).mean()),
                            "gain": float(-harm[:, j].mean()),
                            "best_gain": best,
                            "draws": n_draws,
                            "seconds": time.perf_counter() - t0,
                        }
                    )
            print(f"synthetic: {pop.name}, n={n} done")
    return rows


def synthetic_table(rows) -> str:
    out = []
    for pop in dict.fromkeys(r["population"] for r in rows):
        for n in dict.fromkeys(r["n_cal"] for r in rows):
            sub = [r for r in rows if r["population"] == pop and r["n_cal"] == n]
            if not sub:
                continue
            out.append(
                f"\n**{pop}, n_cal = {n}** ({sub[0]['draws']} draws; best possible "
                f"gain {sub[0]['best_gain']:+.4f}). Per budget: violation rate / share "
                "of draws that delegate / mean true accuracy gain over the probe.\n"
            )
            head = "| design | " + " | ".join(f"alpha={a:g}" for a in ALPHAS) + " |"
            out.append(head)
            out.append("|---" * (len(ALPHAS) + 1) + "|")
            for design in DESIGNS:
                cells = []
                for a in ALPHAS:
                    r = next(
                        x for x in sub if x["design"] == design and x["alpha"] == a
                    )
                    cells.append(
                        f"{r['violation']:.3f} / {r['delegates']:.2f} / "
                        f"{r['gain']:+.4f}"
                    )
                out.append(f"| {design} | " + " | ".join(cells) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------ real data
def data_dir() -> Path:
    return ROOT.parent / "shared" / "data"


def cache_dir() -> Path:
    from skctd.cli import default_cache_dir

    return default_cache_dir()


def safety_probe(seed=SEED):
    try:  # the shared recipe, once it is on main
        from skctd.probes import make_safety_probe

        return make_safety_probe(random_state=seed)
    except ImportError:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(
            StandardScaler(),
            GridSearchCV(
                LogisticRegression(max_iter=5000),
                {"C": np.logspace(-4, 2, 13)},
                cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                scoring="neg_log_loss",
            ),
        )


def dv_probe():
    try:
        from skctd.probes import make_dv_probe

        return make_dv_probe()
    except ImportError:
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-1, 5, 13)))


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def xstest_crossfit(Z, y, cache: Path):
    """Out-of-fold probe scores, and per outer fold the inner out-of-fold probe
    scores of its training rows (the DV targets of that fold's DV probe)."""
    path = cache / "joint_guarantee_xs_crossfit.npz"
    if path.is_file():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = np.empty(len(y), dtype=int)
    p = np.empty(len(y))
    p_inner = np.full((N_FOLDS, len(y)), np.nan)
    outer = StratifiedKFold(N_FOLDS, shuffle=True, random_state=SEED)
    for k, (tr, te) in enumerate(outer.split(Z, y)):
        folds[te] = k
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p[te] = safety_probe().fit(Z[tr], y[tr]).predict_proba(Z[te])[:, 1]
            inner = StratifiedKFold(N_FOLDS, shuffle=True, random_state=SEED)
            p_inner[k, tr] = cross_val_predict(
                safety_probe(), Z[tr], y[tr], cv=inner, method="predict_proba"
            )[:, 1]
        print(f"xstest probe fold {k + 1}/{N_FOLDS}")
    out = {"p": p, "p_inner": p_inner, "folds": folds}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def xstest_dv(Z, y, e, keep, cf):
    dv = np.full(len(y), np.nan)
    for k in range(N_FOLDS):
        te = cf["folds"] == k
        tr = ~te & keep
        v = delegation_value(y[tr], cf["p_inner"][k, tr], e[tr])
        dv[te] = dv_probe().fit(Z[tr], v).predict(Z[te])
    return dv


def random_splits(n, n_splits, seed):
    """n_splits random 50/50 calibration/evaluation splits, and the 30/70
    optimisation/testing split of each calibration half."""
    rng = np.random.RandomState(seed)
    splits, evals = [], []
    for _ in range(n_splits):
        perm = rng.permutation(n)
        cal, ev = np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])
        o, t = opt_test_split(cal.size, random_state=rng)
        splits.append((cal[o], cal[t]))
        evals.append(ev)
    return splits, evals


def evaluate(y, p, e, dv, thresholds, evals):
    """Per split and budget: accuracy and AUROC gain over the probe, harmful flag
    (accuracy below the probe's by more than 1/n_eval) and realised rate."""
    r_, b_ = thresholds.shape
    acc_gain = np.empty((r_, b_))
    auc_gain = np.empty((r_, b_))
    rate = np.empty((r_, b_))
    harmful = np.empty((r_, b_), dtype=bool)
    for i, ev in enumerate(evals):  # one vectorised evaluation per split
        ye, pe, ee, de = y[ev], p[ev], e[ev], dv[ev]
        deleg = de[:, None] > thresholds[i][None, :]
        scores = np.where(deleg, ee[:, None], pe[:, None])
        acc_c = np.mean((scores >= 0.5) == ye[:, None].astype(bool), axis=0)
        acc_p = np.mean((pe >= 0.5) == ye.astype(bool))
        auc_p = roc_auc_score(ye, pe)
        acc_gain[i] = acc_c - acc_p
        harmful[i] = acc_c < acc_p - 1.0 / ev.size - 1e-12
        auc_gain[i] = [roc_auc_score(ye, scores[:, j]) - auc_p for j in range(b_)]
        rate[i] = deleg.mean(axis=0)
    return acc_gain, auc_gain, rate, harmful


def run_real(name, y, p, e, dv, n_splits, designs):
    splits, evals = random_splits(y.size, n_splits, SEED)
    rows = []
    for design in designs:
        kw = DESIGNS[design]
        t0 = time.perf_counter()
        res = calibrate(dv, y, p, e, splits, kw)
        seconds = time.perf_counter() - t0
        acc, auc, rate, harmful = evaluate(y, p, e, dv, res.thresholds, evals)
        for j, a in enumerate(ALPHAS):
            h = float(harmful[:, j].mean())
            rows.append(
                {
                    "data": name,
                    "design": design,
                    "alpha": float(a),
                    "harmful": h,
                    "harmful_se": math.sqrt(h * (1 - h) / n_splits),
                    "acc_gain": float(acc[:, j].mean()),
                    "acc_gain_se": float(acc[:, j].std(ddof=1) / math.sqrt(n_splits)),
                    "auroc_gain": float(auc[:, j].mean()),
                    "rate": float(rate[:, j].mean()),
                    "delegating_splits": float(
                        np.isfinite(res.thresholds[:, j]).mean()
                    ),
                    "n_splits": n_splits,
                    "n_eval": int(evals[0].size),
                    "ms_per_split": 1000 * seconds / n_splits,
                }
            )
    return rows


def load_xstest(n_splits, designs):
    path = data_dir() / "xstest" / "xstest.jsonl"
    act = cache_dir() / "stages" / "act_xstest.npy"
    if not path.is_file():
        print(f"xstest: skipped, {path.relative_to(ROOT.parent)} is absent")
        return [], {}
    if not act.is_file():
        print(
            "xstest: skipped, the cached activations stages/act_xstest.npy are "
            "absent (run benchmarks/reproduce_paper.py --stages-only first)"
        )
        return [], {}
    records = read_jsonl(path)
    y = np.array([r["label"] for r in records], dtype=int)
    Z = np.load(act)
    cf = xstest_crossfit(Z, y, cache_dir() / "stages")
    rows, info = [], {}
    for name in XSTEST_EXPERTS:
        raw = [r.get(f"refused_{name}") for r in records]
        keep = np.array([v is not None for v in raw])
        e = np.array([np.nan if v is None else float(v) for v in raw])
        dv = xstest_dv(Z, y, e, keep, cf)
        yk, pk, ek, dk = y[keep], cf["p"][keep], e[keep], dv[keep]
        info[name] = {
            "rows": int(keep.sum()),
            "probe_acc": float(np.mean((pk >= 0.5) == yk)),
            "expert_acc": float(np.mean((ek >= 0.5) == yk)),
            "probe_auroc": float(roc_auc_score(yk, pk)),
        }
        rows += run_real(f"xstest/{name}", yk, pk, ek, dk, n_splits, designs)
        print(f"xstest {name}: done ({keep.sum()} rows)")
    return rows, info


def load_high_stakes(n_splits, designs):
    stages = cache_dir() / "stages"
    need = [stages / f"{k}.npy" for k in ("judge_hs_dev", "judge_hs_test")]
    acts = [stages / f"act_hs_{k}.npy" for k in ("train", "dev", "test")]
    folder = data_dir() / "high-stakes"
    missing = [f.name for f in need + acts if not f.is_file()]
    if not folder.is_dir() or missing:
        why = (
            f"{folder.relative_to(ROOT.parent)} is absent"
            if not folder.is_dir()
            else f"the cached stages {missing} are absent (the judge job has not "
            "finished)"
        )
        print(f"high_stakes: skipped, {why}")
        return [], {"skipped": why}
    y = {
        k: np.array([r["label"] for r in read_jsonl(folder / f"{k}.jsonl")])
        for k in ("train", "dev", "test")
    }
    Z = {k: np.load(stages / f"act_hs_{k}.npy") for k in ("train", "dev", "test")}
    e_dev, e_test = (np.load(f) for f in need)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = safety_probe().fit(Z["train"], y["train"])
    p_dev = probe.predict_proba(Z["dev"])[:, 1]
    p_test = probe.predict_proba(Z["test"])[:, 1]
    have = np.isfinite(e_dev)
    v = delegation_value(y["dev"][have], p_dev[have], e_dev[have])
    dv = dv_probe().fit(Z["dev"][have], v).predict(Z["test"])
    n_failed = int(np.sum(~np.isfinite(e_test)))
    e_test = np.where(np.isfinite(e_test), e_test, p_test)  # a failed call: probe
    info = {
        "rows": int(y["test"].size),
        "probe_acc": float(np.mean((p_test >= 0.5) == y["test"])),
        "expert_acc": float(np.mean((e_test >= 0.5) == y["test"])),
        "probe_auroc": float(roc_auc_score(y["test"], p_test)),
        "judge_failed_test_rows": n_failed,
    }
    rows = run_real(
        "high_stakes/smollm2", y["test"], p_test, e_test, dv, n_splits, designs
    )
    return rows, {"smollm2": info}


def real_table(rows, designs) -> str:
    out = [
        "| data | design | alpha | harmful splits (SE) | acc gain (SE) | AUROC gain "
        "| realised rate | delegating splits |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for data in dict.fromkeys(r["data"] for r in rows):
        for a in ALPHAS:
            for design in designs:
                r = next(
                    (
                        x
                        for x in rows
                        if x["data"] == data
                        and x["design"] == design
                        and x["alpha"] == a
                    ),
                    None,
                )
                if r is None:
                    continue
                out.append(
                    f"| {data} | {design} | {a:g} | {r['harmful']:.3f} "
                    f"({r['harmful_se']:.3f}) | {100 * r['acc_gain']:+.2f} "
                    f"({100 * r['acc_gain_se']:.2f}) | {100 * r['auroc_gain']:+.2f} | "
                    f"{r['rate']:.3f} | {r['delegating_splits']:.2f} |"
                )
    return "\n".join(out)


USEFUL_XSTEST = ("xstest/gpt4", "xstest/mistralguard", "xstest/llama2new")


def summary_table(synth, real) -> str:
    """One line per design: worst violation rate, and power averaged over the
    populations / experts where delegating can help."""
    out = [
        "| design | worst violation (synthetic) | synthetic: delegating draws, "
        "mean gain (n_cal 200 / 500 / 2000) | XSTest useful experts: delegating "
        "splits, acc gain (pts) at alpha 0.3 / 0.5 | XSTest weak experts: harmful "
        "splits at alpha 0.5 |",
        "|---|---|---|---|---|",
    ]
    for design in DESIGNS:
        cells = [design]
        sub = [r for r in synth if r["design"] == design]
        cells.append(f"{max(r['violation'] for r in sub):.3f}" if sub else "-")
        if sub:
            parts = []
            for n in sorted({r["n_cal"] for r in sub}):
                useful = [
                    r
                    for r in sub
                    if r["n_cal"] == n and not r["population"].startswith("useless")
                ]
                parts.append(
                    f"{np.mean([r['delegates'] for r in useful]):.2f}, "
                    f"{np.mean([r['gain'] for r in useful]):+.4f}"
                )
            cells.append(" / ".join(parts))
        else:
            cells.append("-")
        rr = [r for r in real if r["design"] == design]
        if rr:
            parts = []
            for a in (0.3, 0.5):
                useful = [
                    x for x in rr if x["data"] in USEFUL_XSTEST and x["alpha"] == a
                ]
                parts.append(
                    f"{np.mean([x['delegating_splits'] for x in useful]):.2f}, "
                    f"{100 * np.mean([x['acc_gain'] for x in useful]):+.2f}"
                )
            cells.append(" / ".join(parts))
            weak = [
                x
                for x in rr
                if x["data"] in ("xstest/mistralinstruct", "xstest/llama2orig")
                and x["alpha"] == 0.5
            ]
            cells.append(", ".join(f"{x['harmful']:.2f}" for x in weak))
        else:
            cells += ["-", "-"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", choices=("all", "synthetic", "xstest", "high_stakes"), default="all"
    )
    parser.add_argument(
        "--splits", type=int, default=100, help="random splits (real data)"
    )
    parser.add_argument(
        "--draws", type=int, default=1000, help="calibration draws (synthetic)"
    )
    parser.add_argument("--quick", action="store_true", help="200 draws, 50 splits")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--from-json",
        action="store_true",
        help="rewrite the markdown files from benchmarks/results/joint_guarantee.json",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.splits, args.draws = 50, 200
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        saved = json.loads((RESULTS / "joint_guarantee.json").read_text())
        command = saved.get(
            "command",
            "python benchmarks/bench_joint_guarantee.py --part all --splits 100 "
            "--draws 1000",
        )
        write_reports(saved["synthetic"], saved["real"], saved["info"], command)
        return 0
    synth, real, info = [], [], {}
    if args.part in ("all", "synthetic"):
        synth = run_synthetic(args.draws, (200, 500, 2000))
        print(synthetic_table(synth))
    if args.part in ("all", "xstest"):
        rows, info_x = load_xstest(args.splits, list(DESIGNS))
        real += rows
        info.update({f"xstest/{k}": v for k, v in info_x.items()})
    if args.part in ("all", "high_stakes"):
        rows, info_h = load_high_stakes(args.splits, list(DESIGNS))
        real += rows
        info.update({f"high_stakes/{k}": v for k, v in info_h.items()})
    main_designs = ["plain CTD", DEFAULT]
    if real:
        print(real_table(real, main_designs))
    if args.no_write:
        return 0
    command = (
        f"python benchmarks/bench_joint_guarantee.py --part {args.part} "
        f"--splits {args.splits} --draws {args.draws}"
    )
    saved_path = RESULTS / "joint_guarantee.json"
    if args.part != "all" and saved_path.is_file():
        # a partial run updates the saved results: the parts not run are kept
        synth, real, info, command = merge_saved(
            json.loads(saved_path.read_text()), synth, real, info, command
        )
    (RESULTS / "joint_guarantee.json").write_text(
        json.dumps(
            {"synthetic": synth, "real": real, "info": info, "command": command},
            separators=(",", ":"),
        )
    )
    write_reports(synth, real, info, command)
    return 0


def merge_saved(saved, synth, real, info, command):
    """The saved results with the parts of this run replacing their old rows."""
    new_data = {r["data"] for r in real}
    new_sets = {k.split("/")[0] for k in info}
    real = [r for r in saved["real"] if r["data"] not in new_data] + real
    kept = {
        k: v
        for k, v in saved["info"].items()
        if k.split("/")[0] not in new_sets
    }
    old = saved.get("command", "")
    if command not in old:
        command = f"{old}`, then `{command}" if old else command
    return synth or saved["synthetic"], real, {**kept, **info}, command


def choice_text(synth, real) -> list[str]:
    """The default and why, with the measured numbers."""

    def power(design, a):
        rr = [x for x in real if x["design"] == design and x["data"] in USEFUL_XSTEST]
        rr = [x for x in rr if x["alpha"] == a]
        return np.mean([x["delegating_splits"] for x in rr]), 100 * np.mean(
            [x["acc_gain"] for x in rr]
        )

    def synth_power(design, n):
        rr = [
            r
            for r in synth
            if r["design"] == design
            and r["n_cal"] == n
            and not r["population"].startswith("useless")
        ]
        return np.mean([r["delegates"] for r in rr]), np.mean([r["gain"] for r in rr])

    lines = ["## The choice", ""]
    if real:
        d, g = power(DEFAULT, 0.5)
        lam = power("harm<=0, threshold order", 0.5)
        one = power("harm<=0, one candidate", 0.5)
        bonf = power("harm<=0, Bonferroni", 0.5)
        wsr = power("harm<=0, betting p-value", 0.5)
        plain = power("plain CTD", 0.5)
        lines.append(
            "- Testing order: the optimisation split's estimated p-values (Pareto "
            f"Testing). On XSTest (useful experts, alpha = 0.5) it delegates in "
            f"{d:.2f} of the splits for +{g:.2f} accuracy points; the threshold "
            f"order {lam[0]:.2f} / {lam[1]:+.2f} (it stops at the first thresholds, "
            "which delegate a handful of rows where no test has power), one "
            f"candidate {one[0]:.2f} / {one[1]:+.2f}, Bonferroni over the front "
            f"{bonf[0]:.2f} / {bonf[1]:+.2f}; plain CTD (no harm certificate) "
            f"{plain[0]:.2f} / {plain[1]:+.2f}."
        )
        lines.append(
            "- P-value of harm at epsilon = 0: the exact conditional sign test "
            f"(betting: {wsr[0]:.2f} / {wsr[1]:+.2f}; Hoeffding-Bentkus, which only "
            "uses the range of the loss, certifies nothing at these sizes)."
        )
    if synth:
        base = [synth_power(DEFAULT, n) for n in (200, 500, 2000)]
        eps = [synth_power("harm<=0.01", n) for n in (200, 500, 2000)]
        lines.append(
            "- A small epsilon > 0 (betting p-value) is a different guarantee, not "
            "a free default: synthetic power (delegating draws) at n_cal = 200 / "
            "500 / 2000 is "
            + " / ".join(f"{b[0]:.2f}" for b in base)
            + " at epsilon = 0 and "
            + " / ".join(f"{b[0]:.2f}" for b in eps)
            + " at epsilon = 0.01; it pays from about 500 calibration rows. The "
            "calibration layer keeps epsilon a user choice (no default)."
        )
    if real:
        one_se = power("harm<=0, one-SE pick", 0.5)
        d, g = power(DEFAULT, 0.5)
        lines.append(
            "- Final pick: the best optimisation-split accuracy among the certified "
            f"thresholds (the paper). The one-SE rule gives {one_se[1]:+.2f} points "
            f"against {g:+.2f} under the certificate, which already removes the "
            "harmful picks; for plain CTD it lowers the share of harmful splits a "
            "little (see the tables) at a cost in accuracy, so it stays an option "
            "(`selection='one_se'`)."
        )
    return lines + [""]


def write_reports(synth, real, info, command) -> None:
    stamp = (
        f"Settings: delta = {DELTA}, alphas = {ALPHAS.tolist()}, 100 candidate "
        "thresholds, opt/test = 30/70 of the calibration half, seed "
        f"{SEED}. Produced by `{command}`."
    )
    main_designs = ["plain CTD", DEFAULT]
    if real:
        text = [
            "# The no-harm certificate on real data",
            "",
            "CTD (budget only, the paper's Pareto LTT) next to CTD with the constraint "
            "`harm <= 0` (cascade error <= probe-only error, certified with "
            "probability >= 1 - delta; default design: testing order from the "
            "optimisation split's estimated p-values, exact sign test).",
            f"{real[0]['n_splits']} random 50/50 calibration/evaluation splits per "
            "data set. *Harmful splits*: share of splits where the cascade's "
            "accuracy on the evaluation half is below probe-only by more than "
            "1/n_eval (with its binomial SE); gains are cascade minus probe-only on "
            "the evaluation half, in points (mean over splits; SE of the mean); "
            "*delegating splits*: share of splits whose threshold delegates.",
            "",
            stamp,
            "",
            "XSTest: 5-fold cross-fitted probe (StandardScaler + logistic regression, "
            "C by 5-fold CV log-loss) and DV probe (StandardScaler + RidgeCV, targets "
            "from inner out-of-fold probe scores) on SmolLM2 layer-15 mean-pooled "
            "activations; rows without a verdict for an expert are dropped for it.",
            "",
            "| data | rows | probe acc | expert acc | probe AUROC |",
            "|---|---|---|---|---|",
        ]
        for k, v in info.items():
            if "rows" in v:
                text.append(
                    f"| {k} | {v['rows']} | {v['probe_acc']:.3f} | "
                    f"{v['expert_acc']:.3f} | {v['probe_auroc']:.3f} |"
                )
        if "high_stakes/smollm2" in info:
            text += [
                "",
                "High-stakes: probe (as above) trained on the train split's "
                "activations, DV probe on the dev split with the SmolLM2 judge's "
                "verdicts; the test split is the pool of the random 50/50 "
                "calibration/evaluation splits; rows without a judge verdict keep "
                "the probe's score.",
            ]
        if "high_stakes/skipped" in info:
            text += [
                "",
                f"High-stakes with the SmolLM2 judge: not run, {info['high_stakes/skipped']}.",
            ]
        text += ["", real_table(real, main_designs), ""]
        (RESULTS / "joint_guarantee.md").write_text("\n".join(text))
    if synth or real:
        design_path = RESULTS / "joint_guarantee_design.md"
        parts = [
            "# Designs of the no-harm certificate, measured",
            "",
            "The guarantee holds for every design (fixed-sequence or Bonferroni "
            "control of the family-wise error at delta over an order fixed on the "
            "optimisation split); they differ in power. " + stamp,
            "",
        ]
        parts += [
            "## Summary",
            "",
            "Synthetic power is averaged over the three populations where "
            "delegation can help and the four budgets; XSTest over the three "
            "experts better than or close to the probe (gpt4, mistralguard, "
            "llama2new); the weak experts are mistralinstruct and llama2orig "
            "(plain CTD claims nothing about harm, so its harmful splits are not "
            "violations of a certificate).",
            "",
            summary_table(synth, real),
            "",
        ]
        parts += choice_text(synth, real)
        if synth:
            parts += [
                "## Synthetic populations (true risks in closed form)",
                "",
                "Probe right with probability 0.8 everywhere; expert right with the "
                "probability given per population, as a function of the signal s ~ "
                "U(0, 1); labels independent with P(y = 1) = 0.4. Violation: a "
                "certified constraint (budget, or harm <= epsilon) is false at the "
                "chosen threshold.",
                synthetic_table(synth),
                "",
            ]
        if real:
            parts += [
                "## Real data (all designs)",
                "",
                real_table(real, list(DESIGNS)),
                "",
            ]
        design_path.write_text("\n".join(parts))


if __name__ == "__main__":
    raise SystemExit(main())

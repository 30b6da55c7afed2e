"""``terugkeer monitor km`` and ``monitor cox`` on the Rossi et al. (1980) data (432 men released
from Maryland prisons, followed 52 weeks for arrest; shipped with lifelines), against R's
published figures and the product limit worked out by hand; and their error contract."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_rossi
from typer.testing import CliRunner

from terugkeer.cli import app

runner = CliRunner()
KM = ["--time", "week", "--event", "arrest"]
COVARIATES = "fin,age,race,wexp,mar,paro,prio"
# R: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi),
# Fox and Weisberg, appendix to An R Companion to Applied Regression: coef, exp(coef), se(coef)
R_FIT = {
    "fin": (-0.37942, 0.6843, 0.19138),
    "age": (-0.05744, 0.9442, 0.02200),
    "race": (0.31390, 1.3688, 0.30799),
    "wexp": (-0.14980, 0.8609, 0.21222),
    "mar": (-0.43370, 0.6481, 0.38187),
    "paro": (-0.08487, 0.9186, 0.19576),
    "prio": (0.09150, 1.0958, 0.02865),
}


@pytest.fixture(scope="module")
def rossi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    frame: pd.DataFrame = load_rossi()
    path = tmp_path_factory.mktemp("rossi") / "rossi.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _json(args: list[str]) -> dict[str, object]:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def test_km_whole_sample_at_week_52(rossi: tuple[Path, pd.DataFrame]) -> None:
    path, frame = rossi
    doc = _json(
        ["monitor", "km", str(path), "--time", "week", "--event", "arrest", "--at", "52", "--json"]
    )
    assert doc["schema"] == "terugkeer.monitor.km/1"
    (group,) = doc["groups"]  # type: ignore[misc]
    assert (group["group"], group["n"], group["events"]) == ("all", 432, 114)
    # nobody is censored before week 52, so the product limit telescopes to the plain share:
    # S(52) = prod (1 - d/n) = (432 - 114) / 432
    arrests = int(frame["arrest"].sum())
    by_hand = 1.0
    for week in sorted(frame.loc[frame["arrest"] == 1, "week"].unique()):
        at_risk = int((frame["week"] >= week).sum())
        d = int(((frame["week"] == week) & (frame["arrest"] == 1)).sum())
        by_hand *= 1 - d / at_risk
    assert by_hand == pytest.approx((432 - arrests) / 432, abs=1e-12)
    last = group["rows"][-1]
    assert last["time"] == 52
    assert last["survival"] == pytest.approx(by_hand, abs=1e-12)
    assert round(last["survival"], 4) == 0.7361
    fitted = KaplanMeierFitter().fit(frame["week"], frame["arrest"])
    assert last["lower"] == pytest.approx(fitted.confidence_interval_.iloc[-1, 0], abs=1e-12)
    (at52,) = group["at"]
    assert at52["observed"] is True
    assert at52["cumulative_incidence"] == 114 / 432
    assert at52["at_risk"] == int((frame["week"] >= 52).sum())
    assert len(group["rows"]) == frame["week"].nunique()


def test_km_by_financial_aid(rossi: tuple[Path, pd.DataFrame]) -> None:
    path, frame = rossi
    doc = _json(["monitor", "km", str(path), *KM, "--by", "fin", "--at", "26", "--json"])
    groups = {g["group"]: g for g in doc["groups"]}  # type: ignore[attr-defined]
    assert set(groups) == {0, 1}
    for fin, group in groups.items():
        members = frame[frame["fin"] == fin]
        assert group["n"] == len(members)
        first26 = int(((members["week"] <= 26) & (members["arrest"] == 1)).sum())
        assert group["at"][0]["cumulative_incidence"] == first26 / len(members)
        assert group["rows"][-1]["survival"] == pytest.approx(
            1 - members["arrest"].sum() / len(members), abs=1e-12
        )
    assert groups[1]["rows"][-1]["survival"] > groups[0]["rows"][-1]["survival"]


def test_km_plain_table(rossi: tuple[Path, pd.DataFrame]) -> None:
    path, _ = rossi
    args = ["monitor", "km", str(path), "--time", "week", "--event", "arrest", "--at", "52"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "all: n 432, events 114, censored 318, median time not reached" in result.stdout
    assert "95% interval" in result.stdout
    assert "0,7361" in result.stdout
    assert "by 52: 26,4%" in result.stdout
    assert "observed" in result.stdout


def test_cox_reproduces_r(rossi: tuple[Path, pd.DataFrame]) -> None:
    path, _ = rossi
    doc = _json(["monitor", "cox", str(path), *KM, "--covariates", COVARIATES, "--json"])
    assert doc["schema"] == "terugkeer.monitor.cox/1"
    assert (doc["n"], doc["events"]) == (432, 114)
    terms = {t["name"]: t for t in doc["terms"]}  # type: ignore[attr-defined]
    for name, (coef, hr, se) in R_FIT.items():
        assert round(terms[name]["coef"], 5) == coef, name
        assert round(terms[name]["hazard_ratio"], 4) == hr, name
        assert round(terms[name]["se"], 5) == se, name
    lr = doc["likelihood_ratio"]
    assert (round(lr["statistic"], 2), lr["df"]) == (33.27, 7)  # type: ignore[index]
    ph = doc["proportional_hazards"]
    assert [t["name"] for t in ph["tests"]] == COVARIATES.split(",")  # type: ignore[index]
    assert ph["global"]["df"] == 7  # type: ignore[index]
    assert "association" in str(doc["interpretation"])


def test_cox_plain_and_strata(rossi: tuple[Path, pd.DataFrame]) -> None:
    path, _ = rossi
    args = ["monitor", "cox", str(path), "--time", "week", "--event", "arrest"]
    result = runner.invoke(app, [*args, "--covariates", COVARIATES])
    assert result.exit_code == 0, result.output
    assert "-0,37942" in result.stdout  # fin's coefficient, as R prints it
    assert "33,27 on 7 df" in result.stdout
    assert "global" in result.stdout
    stratified = _json([*args, "--covariates", "fin,age,prio", "--strata", "wexp", "--json"])
    assert stratified["strata"] == ["wexp"]
    assert [t["name"] for t in stratified["terms"]] == ["fin", "age", "prio"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("command", "change", "message"),
    [
        (["km", "--time", "weeks", "--event", "arrest"], None, "no column [weeks]"),
        (["km", "--time", "week", "--event", "prio"], None, "[prio] must be 0 or 1"),
        (["km", "--time", "week", "--event", "arrest"], "x", "[week] has 1 empty or non-numeric"),
        (
            ["cox", "--time", "week", "--event", "arrest", "--covariates", "age,nope"],
            None,
            "[nope]",
        ),
        (["cox", "--time", "week", "--event", "arrest", "--covariates", "age"], "", "line 5"),
    ],
)
def test_errors_are_one_plain_line(
    rossi: tuple[Path, pd.DataFrame],
    tmp_path: Path,
    command: list[str],
    change: str | None,
    message: str,
) -> None:
    path, frame = rossi
    if change is not None:
        broken = frame.astype(object)
        broken.loc[3, "week"] = change
        path = tmp_path / "broken.csv"
        broken.to_csv(path, index=False)
    result = runner.invoke(app, ["monitor", command[0], str(path), *command[1:]])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = runner.invoke(app, ["monitor", "km", str(missing), "--time", "t", "--event", "e"])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        f"monitor km: cannot use {missing}: No such file or directory"
    )

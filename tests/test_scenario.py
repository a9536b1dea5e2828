import pytest

from simnet.scenario import ScenarioError, expand_sweep, load, loads


@pytest.mark.parametrize("patch, field, value", [
    ({"cluster": {"topolgy": {}}}, "cluster.topolgy", "{}"),
    ({"cluster": {"topology": {"bandwidth": "1 Gbit"}}}, "cluster.topology.bandwidth", "1 Gbit"),
    ({"cluster": {"topology": {"bandwidth": "-5 Gbit/s"}}}, "cluster.topology.bandwidth", "-5 Gbit/s"),
    ({"cluster": {"workers": 0}}, "cluster.workers", "0"),
    ({"compressors": [{"name": "qsgd", "levels": 7, "bukket": 3}]}, "compressors.0", "bukket"),
    ({"compressors": [{"name": "zip"}]}, "compressors.0", "zip"),
])
def test_errors_name_file_field_and_value(patch, field, value):
    with pytest.raises(ScenarioError) as err:
        loads(patch, "my.yaml")
    message = str(err.value)
    assert message.startswith("my.yaml: ")
    assert field in message and value in message
    assert "\n" not in message


def test_defaults_fill_in():
    sc = loads({})
    assert sc.cluster.workers == 8 and sc.compressors[0].name == "none"


def test_sweep_is_a_cartesian_product():
    sc = loads({"sweep": {"cluster.topology.bandwidth": ["1 Gbit/s", "10 Gbit/s"],
                          "cluster.workers": [2, 4, 8]}})
    variants = expand_sweep(sc)
    assert len(variants) == 6
    assert {(v.scenario.cluster.topology.bandwidth, v.scenario.cluster.workers) for v in variants} == {
        (b, w) for b in ("1 Gbit/s", "10 Gbit/s") for w in (2, 4, 8)}


def test_sweep_values_are_validated():
    sc = loads({"sweep": {"cluster.topology.bandwidth": ["1 Gbit/s", "-1 Gbit/s"]}})
    with pytest.raises(ScenarioError, match="bandwidth"):
        expand_sweep(sc, "s.yaml")


def test_yaml_errors_are_one_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError) as err:
        load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_every_shipped_scenario_validates():
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))
    assert files, "no scenarios shipped"
    for f in files:
        expand_sweep(load(f), str(f))

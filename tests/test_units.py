import pytest

from simnet.units import UnitError, parse_bandwidth, parse_bytes, parse_time


@pytest.mark.parametrize("text, expected", [
    ("10 Gbit/s", 1.25e9), ("1 Gbps", 1.25e8), ("100 Mbit/s", 1.25e7), ("1 GB/s", 1e9),
    ("1 GiB/s", 2.0**30), (1000.0, 1000.0)])
def test_bandwidth(text, expected):
    assert parse_bandwidth(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("text, expected", [("5 us", 5e-6), ("2 ms", 2e-3), ("1 s", 1.0), (0, 0.0)])
def test_time(text, expected):
    assert parse_time(text) == pytest.approx(expected, rel=1e-15)


def test_bytes_binary_and_decimal():
    assert parse_bytes("64 MiB") == 64 * 2**20
    assert parse_bytes("1 GB") == 1e9


@pytest.mark.parametrize("bad", ["-1 Gbit/s", "0 Gbit/s", "1 Gbit", "fast", "nan Gbit/s", True])
def test_bad_bandwidth_names_field_and_value(bad):
    with pytest.raises(UnitError) as err:
        parse_bandwidth(bad, "cluster.topology.bandwidth")
    assert "cluster.topology.bandwidth" in str(err.value)
    assert repr(bad) in str(err.value)

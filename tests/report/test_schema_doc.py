"""The scenario reference is generated from the JSON Schema, and the README's copy is current."""

from pathlib import Path

from simnet.report.schema_doc import SCHEMA_BEGIN, SCHEMA_END, reference, update_file
from simnet.scenario import Scenario

README = Path(__file__).resolve().parents[2] / "README.md"


def test_reference_documents_every_key():
    schema = Scenario.model_json_schema()
    doc = reference()
    for model in [schema, *schema["$defs"].values()]:
        for key in model.get("properties", {}):
            assert f"| `{key}` |" in doc, key
    for name in ("qsgd", "qsgdinf", "nuqsgd", "none"):
        assert f"| `{name}` |" in doc


def test_readme_embeds_the_current_reference():
    text = README.read_text()
    assert SCHEMA_BEGIN in text and SCHEMA_END in text
    embedded = text.split(SCHEMA_BEGIN, 1)[1].split(SCHEMA_END, 1)[0]
    assert embedded.strip() == reference().strip(), (
        "README.md's scenario reference is stale: run "
        "`python -m simnet.report.schema_doc --write README.md`")


def test_update_file_replaces_only_the_marked_block(tmp_path):
    path = tmp_path / "doc.md"
    path.write_text(f"before\n{SCHEMA_BEGIN}\nold\n{SCHEMA_END}\nafter\n")
    assert update_file(path, "new\n")
    assert path.read_text() == f"before\n{SCHEMA_BEGIN}\nnew\n{SCHEMA_END}\nafter\n"
    assert not update_file(path, "new\n")

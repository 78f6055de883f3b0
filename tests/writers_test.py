"""metrics.jsonl and TensorBoard after a resume from an earlier checkpoint: each step once."""

import json
import os
import struct

from tensorboardX.proto.event_pb2 import Event, SessionLog

from gan_jax.writers import MetricWriter, read_metrics


def tensorboard_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
    """The scalars TensorBoard shows for `logdir`: it reads the event files in name order, and a
    START session log at step T hides the events read before it at steps >= T (tensorboard's
    event_accumulator, purge by session log). Records are TFRecords: length (8 bytes), its
    CRC (4), the serialized Event, its CRC (4)."""
    shown = {}
    for name in sorted(os.listdir(logdir)):
        with open(os.path.join(logdir, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            if event.session_log.status == SessionLog.START:
                shown = {
                    tag: [(s, v) for s, v in rows if s < event.step] for tag, rows in shown.items()
                }
            for value in event.summary.value:
                shown.setdefault(value.tag, []).append((event.step, value.simple_value))
    return shown


def write_rows(workdir, initial_step, steps, offset):
    writer = MetricWriter(str(workdir), 100, initial_step=initial_step)
    for step in steps:
        writer.write(step, {"d_loss": step + offset})
    writer.close()


def test_a_resume_drops_the_abandoned_rows_from_metrics_and_tensorboard(tmp_path):
    # The abandoned run logged 4..24, and its last checkpoint was at step 16.
    write_rows(tmp_path, 0, range(4, 25, 4), offset=0.5)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 28, "d_lo')  # killed while writing a line
    with open(tmp_path / "metrics.jsonl") as f:
        abandoned = f.read()
    write_rows(tmp_path, 16, [], offset=0)  # resumed at 16, stopped before its first log step

    assert [r["step"] for r in read_metrics(str(tmp_path))] == [4, 8, 12, 16]
    backups = [n for n in os.listdir(tmp_path) if n.startswith("metrics.jsonl.bak-")]
    assert len(backups) == 1
    with open(tmp_path / backups[0]) as f:
        assert f.read() == abandoned
    shown = tensorboard_scalars(str(tmp_path / "tensorboard"))
    assert shown == {"d_loss": [(s, s + 0.5) for s in (4, 8, 12, 16)]}

    write_rows(tmp_path, 16, [20, 24], offset=0.25)
    rows = read_metrics(str(tmp_path))
    assert [(r["step"], r["d_loss"]) for r in rows] == [
        (4, 4.5),
        (8, 8.5),
        (12, 12.5),
        (16, 16.5),
        (20, 20.25),
        (24, 24.25),
    ]
    shown = tensorboard_scalars(str(tmp_path / "tensorboard"))
    assert shown == {"d_loss": [(r["step"], r["d_loss"]) for r in rows]}


def test_a_run_that_drops_nothing_rewrites_nothing(tmp_path):
    write_rows(tmp_path, 0, [4, 8], offset=0)
    before = os.stat(tmp_path / "metrics.jsonl")
    write_rows(tmp_path, 8, [], offset=0)
    assert os.stat(tmp_path / "metrics.jsonl").st_ino == before.st_ino
    assert not [n for n in os.listdir(tmp_path) if ".bak-" in n]
    # A whole last record that lost its newline is kept, and the next row starts a new line.
    with open(tmp_path / "metrics.jsonl", "rb+") as f:
        f.truncate(os.path.getsize(tmp_path / "metrics.jsonl") - 1)
    write_rows(tmp_path, 8, [12], offset=0)
    with open(tmp_path / "metrics.jsonl") as f:
        assert [json.loads(line)["step"] for line in f] == [4, 8, 12]

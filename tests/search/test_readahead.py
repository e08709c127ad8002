"""Reading batches ahead: in order, overlapping the consumer, never more than ``depth`` ahead, errors where they
belong, nothing left running after an early stop; and a batch read ahead is the batch read directly."""
import threading
import time

import pytest
import torch

from effnas.search.data.dataset import Rows, subset
from effnas.search.data.readahead import batches, needs_reading, read_ahead


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("effnas-read")]


def test_values_come_in_the_keys_order_whatever_order_the_reads_finish_in():
    def read(key):
        time.sleep(0.002 * (key % 3))  # later keys often finish first
        return key * key
    assert list(read_ahead(read, range(20), depth=4, readers=3)) == [k * k for k in range(20)]


def test_the_next_read_runs_while_the_current_value_is_in_use():
    second_read = threading.Event()

    def read(key):
        if key == 1:
            second_read.set()
        return key

    for key in read_ahead(read, range(3), depth=2, readers=1):
        if key == 0:  # read sequentially, key 1 would only be read after this body: the wait would time out
            assert second_read.wait(timeout=10), "key 1 was not read while key 0 was in use"


def test_reads_never_run_more_than_depth_ahead():
    started = []
    for consumed, _ in enumerate(read_ahead(started.append, range(30), depth=3, readers=2)):
        assert len(started) <= consumed + 1 + 3


def test_a_failed_read_raises_where_its_value_would_have_been():
    def read(key):
        if key == 5:
            raise OSError("disk gone")
        return key

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        for key in read_ahead(read, range(10), depth=4):
            seen.append(key)
    assert seen == [0, 1, 2, 3, 4]
    assert not reader_threads()


def test_stopping_early_leaves_no_reader_running_and_starts_no_more_reads():
    started = []
    values = read_ahead(lambda key: started.append(key) or key, range(100), depth=4, readers=2)
    for key in values:
        if key == 2:
            break
    values.close()
    assert not reader_threads()
    count = len(started)
    time.sleep(0.05)
    assert len(started) == count <= 3 + 4


def test_batches_of_streamed_rows_equal_the_resident_rows():
    base = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8)
    index = torch.randperm(50, generator=torch.Generator().manual_seed(0))[:40]
    rows, resident = Rows(base, index), base[index]
    picks = [torch.tensor([3, 1, 4]), slice(0, 7), torch.tensor([39, 0]), slice(35, 40)]
    assert needs_reading(rows, torch.device("cpu")) and not needs_reading(resident, torch.device("cpu"))
    for got, pick in zip(batches(rows, picks, torch.device("cpu")), picks, strict=True):
        assert torch.equal(got, resident[pick])


def test_a_subset_of_rows_stays_rows_and_reads_the_same_images():
    base = torch.randint(0, 256, (30, 3, 2, 2), dtype=torch.uint8)
    rows = Rows(base, torch.arange(29, -1, -1))
    part = subset(rows, slice(10, 20))
    assert isinstance(part, Rows) and len(part) == 10
    assert torch.equal(part[0:10], base.flip(0)[10:20])
    assert torch.equal(subset(base, slice(10, 20)), base[10:20])


def test_a_dataset_for_a_device_whose_memory_effnas_cannot_read_stays_on_the_host():
    from effnas.search.data.dataset import Dataset, fits_on, place

    images = torch.zeros((8, 3, 2, 2), dtype=torch.uint8)
    data = Dataset(name="t", train_x=images, train_y=torch.zeros(8, dtype=torch.long), val_x=images,
                   val_y=torch.zeros(8, dtype=torch.long), num_classes=1, mean=torch.zeros(1, 3, 1, 1),
                   std=torch.ones(1, 3, 1, 1))
    assert fits_on(torch.device("cpu"), data) and not fits_on(torch.device("meta"), data)
    placed = place(data, torch.device("meta"))
    assert placed.train_x.device.type == "cpu" and placed.mean.device.type == "meta"


def test_a_set_on_the_training_gpu_is_not_read_whatever_index_names_it():
    """--device auto and cuda give torch.device("cuda"); the set placed there reports cuda:0. Tensors are faked:
    only their device is read."""
    from types import SimpleNamespace

    on_gpu0 = SimpleNamespace(device=torch.device("cuda", 0))
    assert not needs_reading(on_gpu0, torch.device("cuda")) and not needs_reading(on_gpu0, torch.device("cuda:0"))
    assert needs_reading(on_gpu0, torch.device("cuda:1"))
    host = torch.zeros(1)
    assert needs_reading(host, torch.device("cuda")) and not needs_reading(host, torch.device("cpu"))

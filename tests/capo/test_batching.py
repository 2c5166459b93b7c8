"""Length-grouped batches: a permutation, similar lengths together, reproducible, full batches first."""

import random

from capo.batching import epoch_order, length_grouped_order


def padding(order, lengths, batch_size):
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def test_grouped_order_is_a_reproducible_permutation_with_less_padding() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(10, 300) for _ in range(203)]
    grouped = length_grouped_order(lengths, 8, seed=3, epoch=1)
    assert sorted(grouped) == list(range(203))
    assert grouped == length_grouped_order(lengths, 8, seed=3, epoch=1)
    assert grouped != length_grouped_order(lengths, 8, seed=3, epoch=2)
    assert padding(grouped, lengths, 8) < padding(epoch_order(203, 3, 1), lengths, 8) / 5


def test_the_short_batch_comes_last_so_full_batches_stay_aligned() -> None:
    lengths = list(range(1, 20))  # 19 pairs, batches of 4: 4 full, then 3
    grouped = length_grouped_order(lengths, 4, seed=0, epoch=0)
    last = grouped[16:]
    assert len(last) == 3
    first_batches = [grouped[i : i + 4] for i in range(0, 16, 4)]
    for batch in first_batches:
        spread = max(lengths[i] for i in batch) - min(lengths[i] for i in batch)
        assert spread == 3  # four consecutive lengths: one sorted run of the megabatch

"""The image pool of past fakes (Shrivastava et al. 2017), as CycleGAN uses it."""

import pytest
import torch

from lightning_modules.training.image_pool import ImagePool


def constant_images(values: range) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)


def test_filling_pool_returns_the_query_and_stores_it() -> None:
    pool = ImagePool(size=4)
    images = constant_images(range(3))
    assert torch.equal(pool.query(images), images)
    assert len(pool) == 3


def test_full_pool_returns_a_stored_fake_with_probability_half() -> None:
    pool = ImagePool(size=50, generator=torch.Generator().manual_seed(0))
    pool.query(constant_images(range(50)))
    queries = 4000
    returned = pool.query(constant_images(range(1000, 1000 + queries)))
    from_pool = (returned[:, 0, 0, 0] < 1000).float().mean().item()
    # Only the first 50 draws can return an original stored value; later swaps return earlier
    # queries, so count "returned something other than the query itself".
    not_the_query = (returned[:, 0, 0, 0] != torch.arange(1000, 1000 + queries)).float().mean()
    assert not_the_query.item() == pytest.approx(0.5, abs=0.03)
    assert 0 < from_pool < 0.05
    assert len(pool) == 50


def test_swapped_out_fake_is_replaced_by_the_new_one() -> None:
    pool = ImagePool(size=1, generator=torch.Generator().manual_seed(1))
    pool.query(constant_images(range(1)))
    queries = range(1, 200)
    outputs = [pool.query(constant_images(range(v, v + 1)))[0, 0, 0, 0].item() for v in queries]
    swaps = [(v, out) for v, out in zip(queries, outputs, strict=True) if out != v]
    assert len(swaps) > 50, "with p=0.5 over 199 draws many swaps must happen"
    # The first swap returns the image stored while filling; each later swap returns the query
    # that the previous swap put into the pool.
    assert swaps[0][1] == 0
    for (previous_query, _), (_, returned) in zip(swaps, swaps[1:], strict=False):
        assert returned == previous_query


def test_pool_detaches_and_size_zero_is_a_passthrough() -> None:
    images = torch.rand(3, 1, 2, 2, requires_grad=True)
    out = ImagePool(size=0).query(images)
    assert torch.equal(out, images) and not out.requires_grad


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="image pool size must be >= 0, got -1"):
        ImagePool(size=-1)

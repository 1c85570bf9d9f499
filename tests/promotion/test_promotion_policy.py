"""Each promotion rule at its strictest over every place that declares it."""

from __future__ import annotations

from releasekit.config.model import EnvironmentConfig, PromotionPolicy
from releasekit.promotion.policy import Declared, strictest


def env(promotes_from: str | None = "staging", **policy: object) -> EnvironmentConfig:
    return EnvironmentConfig(
        name="prod",
        schema="prod",
        promotes_from=promotes_from,
        promotion=PromotionPolicy(**policy),  # type: ignore[arg-type]
    )


def test_each_rule_takes_its_strictest_value() -> None:
    checkout = env(approvals=1, merge="merge", allow_from=("dev", "hotfix"))
    deployed = Declared(
        "prod's deployed commit", env(approvals=2, self_approval=False, merge="merge", allow_from=("dev",))
    )
    promoted = Declared(
        "the promoted commit", env(requires="checked", merge="ff-only", allow_from=("dev", "hotfix"))
    )

    rules = strictest(checkout, [deployed, promoted])

    assert rules.promotion == PromotionPolicy(
        merge="ff-only", approvals=2, self_approval=False, requires="checked", allow_from=("dev",)
    )
    assert rules.promotes_from == "staging"


def test_a_source_only_one_side_allows_is_not_allowed() -> None:
    checkout = env(promotes_from="dev")
    deployed = Declared("prod's deployed commit", env(promotes_from="staging"))

    rules = strictest(checkout, [deployed])

    assert rules.promotes_from is None and rules.promotion.allow_from == ()


def test_nothing_declared_elsewhere_keeps_the_checkouts_rules() -> None:
    checkout = env(approvals=1, requires="checked", allow_from=("dev",))
    assert strictest(checkout, []) == checkout

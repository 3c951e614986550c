"""The demo organisation: its services, teams, people, environments and time span.

Fixed here so every build (on any machine) generates the same repositories and the same database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from analytics.demo.fast_import import Person

START = datetime(2026, 5, 1, tzinfo=UTC)   # first commit day
END = datetime(2026, 11, 1, tzinfo=UTC)    # exclusive: the last day is 2026-10-31
ENVIRONMENTS: tuple[tuple[str, bool], ...] = (("staging", False), ("production", True))
CONFIG_REPO = "platform-config"
IMAGE_REGISTRY = "registry.example.com/demo"
RELEASE_TAG_PATTERN = r"^v\d+\.\d+\.\d+$"
RELEASE_BOT = Person("Release Bot", "release-bot@example.com", "+0000")


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    team: str
    seed: int
    developers: tuple[Person, ...]
    feature_words: tuple[str, ...]
    release_days: tuple[int, int]  # min/max days between regular releases

    @property
    def image(self) -> str:
        return f"{IMAGE_REGISTRY}/{self.name}"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="payments-api",
        team="payments",
        seed=1101,
        developers=(
            Person("Priya Natarajan", "priya@payments.example.com", "+0530"),
            Person("Jonas Weber", "jonas@payments.example.com", "+0200"),
            Person("Amara Okafor", "amara@payments.example.com", "+0100"),
        ),
        feature_words=("refunds", "ledger", "card-vault", "idempotency", "payouts", "3ds", "fx-rates"),
        release_days=(4, 8),
    ),
    ServiceSpec(
        name="storefront",
        team="web",
        seed=2202,
        developers=(
            Person("Lucia Romero", "lucia@web.example.com", "-0300"),
            Person("Sam Carter", "sam@web.example.com", "-0500"),
        ),
        feature_words=("search", "checkout-ui", "wishlist", "reviews", "a11y", "product-page", "cart"),
        release_days=(2, 5),
    ),
    ServiceSpec(
        name="inventory",
        team="supply",
        seed=3303,
        developers=(
            Person("Mei Tanaka", "mei@supply.example.com", "+0900"),
            Person("Ole Hansen", "ole@supply.example.com", "+0100"),
        ),
        feature_words=("stock-sync", "warehouses", "reservations", "batch-import", "forecast", "audit-log"),
        release_days=(7, 14),
    ),
)

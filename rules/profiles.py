"""Limit profiles as data: the built-in `eu` and `us-msha` files plus the user's own.

`ProfileBook.load()` reads every `*.toml` in `rules/profiles/` and in the extra folders, applies
`extends` (a national profile on top of `eu`, say) and per-profile overrides from the config
file, and validates everything at start-up. `book.limits` is the one global table that
`ConditionBatch.limit` indexes. See docs/exposure.md for the file format.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.errors import ConfigError
from rules.profile_schema import MixtureSpec, ProfileSpec, parse_profile
from rules.results import Direction, Limit
from rules.shifts import SiteConfig
from rules.types import Hazard, RuleKind, Severity

__all__ = [
    "Mixture",
    "NoiseParams",
    "Profile",
    "ProfileBook",
    "SiteConfig",
    "describe_limits",
    "profile_of_site",
    "unjudged_hazards",
]

BUILTIN_DIR = Path(__file__).with_name("profiles")
#: Rules whose limits judge a hazard's readings (a mixture or projection alone does not).
JUDGING_RULES = (RuleKind.LEVEL, RuleKind.STEL, RuleKind.TWA, RuleKind.LEX8H, RuleKind.DOSE)
_MAX_EXTENDS_DEPTH = 16


@dataclass(frozen=True, slots=True)
class NoiseParams:
    """Noise dose parameters: D = 100/(8 h) ∫ 2^((L - criterion)/exchange) dt over L >= threshold.

    Source: 29 CFR 1910.95 App. A and 30 CFR 62 Table 62-1 (T = 8/2^((L-90)/5) h); NIOSH 98-126
    (85 dBA, 3 dB). LEX,8h never uses these: it is always equal energy (ISO 1999, 3 dB).
    """

    criterion_db: float = 85.0
    exchange_db: float = 3.0
    threshold_db: float = 0.0


@dataclass(frozen=True, slots=True)
class Mixture:
    """A group of gases whose Σ Ci/Li is judged (29 CFR 1910.1000(d)(2)(i)); `limit` is its tier."""

    name: str
    hazards: tuple[Hazard, ...]
    basis: RuleKind
    member_limits: tuple[int, ...]  # Li of each hazard: index into ProfileBook.limits
    limit: int  # the mixture's own threshold (index into ProfileBook.limits, rule `mixture`)


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    title: str
    origin: str  # the file(s) and config entries it was built from
    noise: NoiseParams
    limit_ids: tuple[int, ...]
    mixtures: tuple[Mixture, ...] = ()
    _tiers: Mapping[tuple[Hazard, RuleKind], tuple[int, ...]] = field(default_factory=dict)

    def tiers(self, hazard: Hazard, rule: RuleKind) -> tuple[int, ...]:
        """Limit ids of one rule for one hazard, from the mildest to the most severe tier."""
        return self._tiers.get((hazard, rule), ())

    def rules_for(self, hazard: Hazard) -> tuple[RuleKind, ...]:
        return tuple(r for (h, r) in self._tiers if h is hazard)

    def judges(self, hazard: Hazard) -> bool:
        """Does any limit of this profile judge readings of `hazard` (level, STEL, TWA, noise)?"""
        return any(self._tiers.get((hazard, r)) for r in JUDGING_RULES)


@dataclass(frozen=True, slots=True)
class ProfileBook:
    """Every loaded profile and the global limit table."""

    limits: tuple[Limit, ...]
    profiles: Mapping[str, Profile]

    @classmethod
    def load(
        cls, extra_dirs: Sequence[Path] = (), overrides: Mapping[str, Mapping[str, Any]] | None = None
    ) -> ProfileBook:
        """Built-in profiles + `*.toml` in `extra_dirs` + `overrides` (profile name → table)."""
        specs: dict[str, ProfileSpec] = {}
        for path in _profile_files([BUILTIN_DIR, *extra_dirs]):
            spec = parse_profile(_read_toml(path), str(path))
            if spec.name in specs:
                raise ConfigError(
                    f"{path}: field 'name': profile {spec.name!r} is already defined in "
                    f"{specs[spec.name].origin}; give yours another name and use extends"
                )
            specs[spec.name] = spec
        layers = {name: [spec] for name, spec in specs.items()}
        for name, table in (overrides or {}).items():
            spec = parse_profile(table, f"override for profile {name!r}", name=name)
            layers.setdefault(name, []).append(spec)
        return _Builder(layers).build()

    def profile(self, name: str) -> Profile:
        found = self.profiles.get(name)
        if found is None:
            raise ConfigError(f"limit profile {name!r} not found; available: {', '.join(self.names())}")
        return found

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.profiles))


def _profile_files(dirs: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for d in dirs:
        if not Path(d).is_dir():
            raise ConfigError(f"profile folder {d} does not exist")
        files.extend(sorted(Path(d).glob("*.toml")))
    return files


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None


@dataclass(slots=True)
class _Resolved:
    title: str
    origins: list[str]
    noise: dict[str, float]
    groups: dict[tuple[Hazard, RuleKind], list[Limit]]
    mixtures: dict[str, tuple[MixtureSpec, str]]


class _Builder:
    """Resolves `extends` chains and override layers into profiles and the global limit table."""

    def __init__(self, layers: Mapping[str, list[ProfileSpec]]) -> None:
        self.layers = layers
        self.limits: list[Limit] = []

    def build(self) -> ProfileBook:
        profiles = {name: self._profile(name, self._resolve(name, ())) for name in sorted(self.layers)}
        return ProfileBook(tuple(self.limits), profiles)

    def _resolve(self, name: str, chain: tuple[str, ...]) -> _Resolved:
        if name in chain or len(chain) > _MAX_EXTENDS_DEPTH:
            raise ConfigError(
                f"{self.layers[chain[-1]][0].origin}: field 'extends': cycle {' -> '.join((*chain, name))}"
            )
        layers = self.layers[name]
        base = layers[0].extends
        if base is not None and base not in self.layers:
            raise ConfigError(f"{layers[0].origin}: field 'extends': no profile named {base!r}")
        res = self._resolve(base, (*chain, name)) if base is not None else _Resolved(name, [], {}, {}, {})
        for spec in layers:
            _apply(res, spec)
        return res

    def _profile(self, name: str, res: _Resolved) -> Profile:
        noise = NoiseParams(**res.noise)
        tiers: dict[tuple[Hazard, RuleKind], tuple[int, ...]] = {}
        groups = {**res.groups, **_projections(res.groups)}
        for key, group in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
            if len({lim.averaging for lim in group}) > 1:
                raise ConfigError(
                    f"{'; '.join(res.origins)}: profile {name!r}: {key[0]} {key[1]} tiers: field 'averaging': "
                    "all tiers of one rule must use the same averaging period"
                )
            ordered = sorted(group, key=_tier_order)
            ids = []
            for lim in ordered:
                if lim.rule is RuleKind.DOSE and lim.integration_db is None:
                    lim = dataclasses.replace(lim, integration_db=noise.threshold_db)
                ids.append(self._add(dataclasses.replace(lim, profile=name)))
            tiers[key] = tuple(ids)
        mixtures = tuple(self._mixture(name, spec, origin, tiers) for spec, origin in res.mixtures.values())
        all_ids = tuple(i for ids in tiers.values() for i in ids) + tuple(m.limit for m in mixtures)
        return Profile(name, res.title, "; ".join(res.origins), noise, all_ids, mixtures, tiers)

    def _mixture(
        self,
        profile: str,
        spec: MixtureSpec,
        origin: str,
        tiers: Mapping[tuple[Hazard, RuleKind], tuple[int, ...]],
    ) -> Mixture:
        members = []
        for hazard in spec.hazards:
            ids = tiers.get((hazard, spec.basis), ())
            if not ids:
                raise ConfigError(
                    f"{origin}: mixture {spec.name!r}: field 'hazards': {hazard} has no {spec.basis} limit "
                    f"in profile {profile!r}"
                )
            members.append(limit_tier(self.limits, ids))
        own = Limit(
            profile=profile, hazard=spec.hazards[0], rule=RuleKind.MIXTURE, severity=spec.severity,
            threshold=spec.threshold, unit="1", direction=Direction.ABOVE, source=spec.source,
            action=spec.action, label=spec.label,
        )  # fmt: skip
        return Mixture(spec.name, spec.hazards, spec.basis, tuple(members), self._add(own))

    def _add(self, lim: Limit) -> int:
        self.limits.append(lim)
        return len(self.limits) - 1


def _apply(res: _Resolved, spec: ProfileSpec) -> None:
    res.title = spec.title
    res.origins.append(spec.origin)
    res.noise.update(spec.noise)
    for key in spec.removes:
        res.groups.pop(key, None)
    fresh: dict[tuple[Hazard, RuleKind], list[Limit]] = {}
    for lim in spec.limits:
        fresh.setdefault((lim.hazard, lim.rule), []).append(lim)
    res.groups.update(fresh)  # a layer's tiers for (hazard, rule) replace the inherited ones
    for mix in spec.mixtures:
        res.mixtures[mix.name] = (mix, spec.origin)


def _projections(groups: Mapping[tuple[Hazard, RuleKind], list[Limit]]) -> dict[tuple[Hazard, RuleKind], list[Limit]]:
    """An early warning per TWA limit tier of severity alarm or worse: the shift-to-date TWA
    projected to the shift's end at the shift's mean concentration so far reaches the limit."""
    out: dict[tuple[Hazard, RuleKind], list[Limit]] = {}
    for (hazard, rule), group in groups.items():
        if rule is not RuleKind.TWA:
            continue
        for lim in group:
            if lim.severity.rank >= Severity.ALARM.rank:
                out.setdefault((hazard, RuleKind.TWA_PROJECTED), []).append(
                    dataclasses.replace(
                        lim,
                        rule=RuleKind.TWA_PROJECTED,
                        severity=Severity.WARNING,
                        clear_at=None,
                        label=f"projected to exceed: {lim.label}",
                        action=f"At this rate the shift average will pass {lim.threshold:g} {lim.unit} before the "
                        "shift ends: reduce exposure now.",
                    )
                )
    return out


def _tier_order(lim: Limit) -> tuple[int, float]:
    """Mildest first: by severity, then by how far into danger the threshold lies."""
    sign = 1.0 if lim.direction is Direction.ABOVE else -1.0
    return lim.severity.rank, sign * lim.threshold


def limit_tier(limits: Sequence[Limit], ids: Sequence[int]) -> int:
    """The tier that is "the limit" of a rule: the mildest of severity alarm or worse, else the worst."""
    for i in ids:
        if limits[i].severity.rank >= Severity.ALARM.rank:
            return i
    return ids[-1]


def describe_limits(book: ProfileBook, profile: str) -> list[dict[str, str]]:
    """Rows for `oshmon limits`: one per limit tier, in the hazard's canonical unit; `averaging`
    is `8h` or `shift` for twa (and projected twa) tiers, empty for the other rules."""
    prof = book.profile(profile)
    rows = []
    mixture_names = {m.limit: "+".join(m.hazards) for m in prof.mixtures}
    for i in prof.limit_ids:
        lim = book.limits[i]
        rows.append(
            {
                "hazard": mixture_names.get(i, str(lim.hazard)),
                "rule": str(lim.rule),
                "severity": str(lim.severity),
                "threshold": f"{lim.threshold:g}",
                "unit": lim.unit,
                "direction": str(lim.direction),
                "label": lim.label,
                "source": lim.source,
                "action": lim.action,
                "averaging": str(lim.averaging) if lim.rule in (RuleKind.TWA, RuleKind.TWA_PROJECTED) else "",
            }
        )
    return rows


def profile_of_site(sites: Mapping[str, SiteConfig], default_profile: str, site: str) -> str:
    """The limit profile that judges a site: its own (`[sites.NAME] profile`), else the default."""
    cfg = sites.get(site)
    return cfg.profile if cfg is not None and cfg.profile else default_profile


def unjudged_hazards(book: ProfileBook, profile: str, measured: Iterable[Hazard] | None = None) -> tuple[Hazard, ...]:
    """Hazards (of `measured`, default every hazard) that `profile` has no limit for, in SPEC
    order: their readings are stored but never raise an exposure alert. The gateway raises a
    `not_judged` configuration alert per site and hazard measured; boards and reports can ask
    the same question with this function (site → profile: `profile_of_site`)."""
    prof = book.profile(profile)
    wanted = set(Hazard) if measured is None else set(measured)
    return tuple(h for h in Hazard if h in wanted and not prof.judges(h))

"""Clustering the linkage model's scored pairs into people.

`cluster_rows` turns a run's scored profile pairs into a cluster per row (full or incremental
linkage): connected components over the pairs at or above the threshold plus the deterministic
edges (rows sharing a trust's LocalPatientId or a police incident), strongest links first; a
name-only record attaches to its one clear candidate (see `cluster_pairs`). Pure functions over
arrays and frames: no Splink, no DuckDB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.identity.linkage_model import LinkageOptions


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # Renumber by first appearance so the numbering depends only on row order.
    _, first_seen = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first_seen))
    return order[labels]


class Components:
    """Union-find over components that refuses to give one person two NHS numbers."""

    def __init__(
        self,
        component: np.ndarray,
        nhs_codes: np.ndarray,
        anchored_rows: np.ndarray,
        known_rows: np.ndarray | None = None,
    ):
        k = int(component.max()) + 1 if len(component) else 0
        self.k = k
        self.parent = list(range(k))
        self.tokens: dict[int, set[int]] = {}
        has = nhs_codes >= 0
        for comp, code in set(zip(component[has].tolist(), nhs_codes[has].tolist(), strict=False)):
            self.tokens.setdefault(comp, set()).add(code)
        anchored = np.zeros(k, dtype=bool)
        anchored[component[anchored_rows]] = True
        self.anchored = anchored.tolist()
        # Components holding a record an earlier run already placed (incremental linkage):
        # their attachments were decided then, against every rival, so they never attach.
        known = np.zeros(k, dtype=bool)
        if known_rows is not None and len(known_rows):
            known[component[known_rows]] = True
        self.known = known.tolist()
        self.refused = 0
        self.overridden = 0
        self.size = np.bincount(component, minlength=k).tolist()

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, x: int, y: int, override: bool = False) -> bool:
        """Merge; ``override`` admits one NHS conflict (names and birth date agree outright:
        a mistyped NHS number) without adopting the other number, so it cannot chain on."""
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return True
        tx, ty = self.tokens.get(rx), self.tokens.get(ry)
        if tx and ty and tx.isdisjoint(ty):
            if not override:
                self.refused += 1
                return False
            self.overridden += 1
            if len(ty) > len(tx):
                rx, ry, tx, ty = ry, rx, ty, tx
            self.parent[ry] = rx
            del self.tokens[ry]
            self.anchored[rx] = True
            self.size[rx] += self.size[ry]
            self.known[rx] = self.known[rx] or self.known[ry]
            return True
        if ty and not tx:
            rx, ry, tx, ty = ry, rx, ty, tx
        self.parent[ry] = rx
        if ty:
            tx |= ty  # type: ignore[operator]
            del self.tokens[ry]
        self.anchored[rx] = self.anchored[rx] or self.anchored[ry]
        self.size[rx] += self.size[ry]
        self.known[rx] = self.known[rx] or self.known[ry]
        return True

    def labels(self, component: np.ndarray) -> np.ndarray:
        roots = np.array([self.find(c) for c in range(self.k)], dtype=np.int64)
        labels = roots[component]
        _, first_seen, inverse = np.unique(labels, return_index=True, return_inverse=True)
        rank = np.argsort(np.argsort(first_seen))
        return rank[inverse].astype(np.int64)


def attach(
    uf: Components,
    a: np.ndarray,
    b: np.ndarray,
    weak: np.ndarray,
    weight: list[float],
    margin: float,
    used: np.ndarray,
    lone_anchored: bool,
    attach_max_rows: int,
) -> int:
    """One attachment pass of `cluster` step 2a; returns how many groups were ambiguous."""
    best: dict[int, dict[int, tuple[float, int]]] = {}
    for i, x, y in zip(weak.tolist(), a[weak].tolist(), b[weak].tolist(), strict=False):
        rx, ry = uf.find(x), uf.find(y)
        if rx == ry:
            used[i] = True
            continue
        if not lone_anchored and uf.anchored[rx] != uf.anchored[ry]:
            group, person = (ry, rx) if uf.anchored[rx] else (rx, ry)
        elif (
            lone_anchored
            and uf.anchored[rx]
            and uf.anchored[ry]
            and min(uf.size[rx], uf.size[ry]) <= attach_max_rows
            and uf.size[rx] != uf.size[ry]
        ):
            group, person = (rx, ry) if uf.size[rx] < uf.size[ry] else (ry, rx)
        else:
            continue
        if uf.known[group]:  # placed by an earlier run against every rival: stays put
            continue
        cands = best.setdefault(group, {})
        if person not in cands or weight[i] > cands[person][0]:
            cands[person] = (weight[i], i)
    ambiguous = 0
    for group, cands in best.items():
        ranked = sorted(cands.items(), key=lambda kv: (-kv[1][0], kv[0]))
        if len(ranked) > 1 and ranked[0][1][0] - ranked[1][1][0] < margin:
            ambiguous += 1
            continue
        person, (_, i) = ranked[0]
        used[i] = uf.union(group, person)
    return ambiguous


def cluster_pairs(
    component: np.ndarray,
    nhs_codes: np.ndarray,
    anchored_rows: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    anchored_link: np.ndarray,
    weight: list[float],
    margin: float,
    certain: np.ndarray | None = None,
    is_link: np.ndarray | None = None,
    attach_max_rows: int = 1,
    known_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Cluster components joined by links (given strongest first).

    1. Anchored links (dates of birth agree, or NHS numbers) merge components, unless the merge
       would give one person two NHS numbers.
    2. Unanchored links (names and postcode only: police records without a birth date) never
       join two components that hold a birth date or NHS number: namesakes would chain people
       together. A record without either attaches to the one anchored person it links to (at
       the lower attach threshold), or to the best if that link outweighs the runner-up by
       ``margin`` bits; otherwise it is ambiguous and stays apart. Lone anchored records
       (a mistyped birth date; an anchored link below the threshold) attach the same way, in
       a pass before. What is left unanchored then joins up by itself (at the full threshold).
    ``known_rows`` (incremental linkage) are rows an earlier run placed: their components never
    attach in step 2a (a rival they had then is not among this run's pairs), though a new
    record may still join them, or bridge two of them by anchored links (a merge).
    Returns labels per row, which links were used, and counts for the run's diagnostics.
    """
    uf = Components(component, nhs_codes, anchored_rows, known_rows)
    certain = np.zeros(len(a), dtype=bool) if certain is None else certain
    is_link = np.ones(len(a), dtype=bool) if is_link is None else is_link
    used = np.zeros(len(a), dtype=bool)
    strong = np.flatnonzero(anchored_link & is_link)
    for i, x, y in zip(strong.tolist(), a[strong].tolist(), b[strong].tolist(), strict=False):
        used[i] = uf.union(x, y, override=bool(certain[i]))
    # Everything not merged in step 1: unanchored links, and anchored links below the threshold
    # (an ambulance record with only an NHS number), which may attach a lone record.
    weak = np.flatnonzero(~(anchored_link & is_link))
    weak_links = np.flatnonzero(~anchored_link & is_link)
    # 2a: first lone anchored records (a mistyped birth date or NHS number) to their person,
    #     then each unanchored component to its anchored person: the only one it links to, or
    #     the best if its best link outweighs any link to another person by `margin` bits. Lone
    #     records go first so a person's stray record is not a rival to that person.
    ambiguous = 0
    for lone_anchored in (True, False):
        ambiguous += attach(uf, a, b, weak, weight, margin, used, lone_anchored, attach_max_rows)
    # 2b: what is still unanchored (people never seen with a birth date) joins up by itself.
    for i, x, y in zip(
        weak_links.tolist(), a[weak_links].tolist(), b[weak_links].tolist(), strict=False
    ):
        rx, ry = uf.find(x), uf.find(y)
        if rx == ry:
            used[i] = True
        elif not uf.anchored[rx] and not uf.anchored[ry]:
            used[i] = uf.union(rx, ry)
    counts = {
        "links_refused_nhs_conflict": uf.refused,
        "nhs_conflicts_overridden": uf.overridden,
        "ambiguous_unanchored_groups": ambiguous,
    }
    return uf.labels(component), used, counts


def group_edges(groups: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Star edges joining rows that share any non-null group label (row positions)."""
    a_parts, b_parts = [], []
    for c in groups.columns:
        col = groups[c].reset_index(drop=True).dropna()
        if col.empty:
            continue
        codes, _ = pd.factorize(col)
        pos = col.index.to_numpy()
        first = pd.Series(pos).groupby(codes).transform("first").to_numpy()
        keep = first != pos
        a_parts.append(first[keep])
        b_parts.append(pos[keep])
    if not a_parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(a_parts), np.concatenate(b_parts)


def _known_edges(known: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Star edges joining the rows of each known person, and the known rows."""
    if known is None:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, None
    pos = np.flatnonzero(known >= 0)
    first = pd.Series(pos).groupby(known[pos]).transform("first").to_numpy()
    keep = first != pos
    return first[keep].astype(np.int64), pos[keep].astype(np.int64), pos


def cluster_rows(
    encoded: pd.DataFrame,
    table: pd.DataFrame,
    profile_of_row: np.ndarray,
    pairs: pd.DataFrame,
    groups: pd.DataFrame | None,
    options: LinkageOptions,
    known: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Rows into people from scored profile pairs (`identity.clustering`): a cluster per row,
    each row's match probability and the run's counts. ``known`` (incremental linkage: a
    person number per row from the existing index, -1 for a new row) holds each known person
    together without counting their rows as joined by construction (their probabilities come
    from their links), and known people never attach to anyone (`cluster_pairs`)."""
    n = len(encoded)
    # Nodes: rows 0..n-1. A profile is represented by its first row.
    has_profile = profile_of_row >= 0
    rep = np.full(len(table), -1, dtype=np.int64)
    rows_idx = np.arange(n)
    first_rows = pd.Series(rows_idx[has_profile]).groupby(profile_of_row[has_profile]).first()
    rep[first_rows.index.to_numpy()] = first_rows.to_numpy()
    same_profile = has_profile & (rep[np.maximum(profile_of_row, 0)] != rows_idx)
    ea = [rep[profile_of_row[same_profile]]]
    eb = [rows_idx[same_profile]]
    # Links at the threshold, plus weaker name-only candidates for attachment (step 2a).
    links = pairs[pairs["match_probability"] >= min(options.threshold, options.attach_threshold)]
    if groups is not None and len(groups.columns):
        ga, gb = group_edges(groups)
        ea.append(ga)
        eb.append(gb)
    a = np.concatenate(ea).astype(np.int64)
    b = np.concatenate(eb).astype(np.int64)
    ka, kb, known_rows = _known_edges(known)
    # 1. Joined by construction (and known people): one component each, whatever the
    #    encodings say.
    fa, fb = np.concatenate([a, ka]).astype(np.int64), np.concatenate([b, kb]).astype(np.int64)
    forced = components(n, fa, fb) if n else np.empty(0, dtype=np.int64)
    nhs_codes, _ = pd.factorize(encoded["nhs_number_token"].reset_index(drop=True))
    anchored_rows = np.flatnonzero(
        (encoded["nhs_number_token"].notna() | encoded["birth_date_token"].notna()).to_numpy()
    )
    # 2. Probabilistic links, strongest first (see `identity.clustering.cluster_pairs`).
    la = forced[rep[links["left"].to_numpy()]] if len(links) else np.empty(0, dtype=np.int64)
    lb = forced[rep[links["right"].to_numpy()]] if len(links) else np.empty(0, dtype=np.int64)
    order = np.lexsort((lb, la, -links["match_probability"].to_numpy(dtype=float)))
    cluster, used, cluster_counts = cluster_pairs(
        forced,
        nhs_codes,
        anchored_rows,
        la[order],
        lb[order],
        links["anchored"].to_numpy(dtype=bool)[order],
        links["match_weight"].to_numpy(dtype=float)[order].tolist(),
        options.ambiguity_margin,
        links["certain"].to_numpy(dtype=bool)[order],
        (links["match_probability"].to_numpy(dtype=float) >= options.threshold)[order],
        options.attach_max_rows,
        known_rows,
    )
    accepted_links = links.iloc[order[used]]

    # Match probability per row: best accepted link of its profile; 1.0 if joined by construction.
    best = (
        pd.concat(
            [
                accepted_links[["left", "match_probability"]].rename(columns={"left": "p"}),
                accepted_links[["right", "match_probability"]].rename(columns={"right": "p"}),
            ]
        )
        .groupby("p")["match_probability"]
        .max()
    )
    prob = np.full(n, np.nan)
    prob[has_profile] = (
        pd.Series(profile_of_row[has_profile]).map(best).to_numpy(dtype=float, na_value=np.nan)
    )
    joined = np.zeros(n, dtype=bool)  # rows joined by construction (profile or group label)
    joined[a] = True
    joined[b] = True
    prob = np.where(joined, 1.0, prob)
    sizes = np.bincount(cluster) if n else np.empty(0, dtype=np.int64)
    prob = np.where(sizes[cluster] == 1, np.nan, prob) if n else prob
    counts = {
        "rows": n,
        "profiles": len(table),
        "candidate_pairs_scored": len(pairs),
        "links_at_threshold": len(links),
        "links_used": int(used.sum()),
        **cluster_counts,
        "clusters": int(cluster.max() + 1) if n else 0,
    }
    return cluster, prob, counts

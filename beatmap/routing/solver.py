"""Which blocks to visit, and in what order: an orienteering problem solved with OR-Tools.

* one vehicle from a start depot to an end depot;
* every block is optional (``AddDisjunction``): leaving it out costs its
  priority.  The model writes this as a reward on the arc into the block
  plus an equal penalty for every block left out, which adds up to the same
  objective but lets guided local search (which works on arcs) trade one
  block for two better ones;
* a time dimension (walking time plus the dwell on each block as service
  time) capped at the budget;
* the distance walked is in the arc cost too, weighted so that a kilometre
  counts as 0.001 of priority: priority comes first, and among equally good
  routes the shorter wins;
* the cheapest-insertion first solution is improved by guided local search
  for a fixed number of solutions (deterministic), or the time limit if
  that comes first.

A first search, which does not depend on the seed, finds the best route it
can.  A second search starts from that route with every walk's cost
stretched by a random factor of up to 25% drawn from the seed: that decides
among blocks of equal priority and among visiting orders that fit the time,
and its route is kept only if it covers exactly as much priority.
"""

from __future__ import annotations

import math

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from beatmap.routing.priorities import PRIORITY_DECIMALS

#: Solver objective units (metres walked) per 0.001 of priority: a kilometre of walking weighs as much as
#: 0.001 of priority, so priority comes first and the distance only chooses among equally good routes.
_PRIORITY_UNIT = 1_000
#: The seed stretches each walk's cost by up to this fraction (a tie-break among equally good routes).
_SEED_STRETCH = 0.25
#: Guided local search's penalty strength.  The default (0.1) suits pure distance objectives; with the
#: priorities in the arc costs the search needs stronger penalties to leave the first good route it finds
#: (measured on the demo city against exact optima: 1 miss in 132 instances at 100, up to 27% gaps at 0.1).
_GLS_LAMBDA = 100.0
#: The first search stops after this many solutions (bench/routes.py: at most 2.5 s for 300 candidate
#: blocks, within the time limit's share; 1,000 gave 0.9% less priority and missed one route by 22%,
#: 2,500 no more priority than 1,500) ...
_SOLUTION_LIMIT = 1_500
#: ... and the seed's search, which starts from its route, after this many.
_SEED_SOLUTION_LIMIT = 300
#: Priority totals closer than this are the same (priorities carry PRIORITY_DECIMALS decimals).
_SAME_PRIORITY = 1e-6


def solve_orienteering(
    travel_s: np.ndarray,
    distance_m: np.ndarray,
    priority: np.ndarray,
    *,
    dwell_s: float,
    budget_s: float,
    rng: np.random.Generator,
    time_limit_s: float,
) -> np.ndarray:
    """Which candidates to visit, in order (indices into ``priority``), with OR-Tools' routing solver.

    ``travel_s`` and ``distance_m`` are square over [start, end, candidates...].  Two searches: the
    first, on the true distances, does not depend on the seed and finds the best route it can; the
    second starts from it with the distances stretched by the seed's draw, and its route is kept
    only if it covers exactly as much priority.  So every seed's route is as good as every other's,
    and the seed decides only among equally good routes (a better route a seed's search stumbles
    on is not taken: other seeds would not find it).
    """
    best = _search(
        travel_s=travel_s,
        distance_m=distance_m,
        priority=priority,
        dwell_s=dwell_s,
        budget_s=budget_s,
        initial=None,
        solutions=_SOLUTION_LIMIT,
        time_limit_s=0.75 * time_limit_s,
    )
    stretch = 1 + _SEED_STRETCH * rng.random(distance_m.shape)
    seeded = _search(
        travel_s=travel_s,
        distance_m=distance_m * stretch,
        priority=priority,
        dwell_s=dwell_s,
        budget_s=budget_s,
        initial=best,
        solutions=_SEED_SOLUTION_LIMIT,
        time_limit_s=0.25 * time_limit_s,
    )
    return seeded if abs(priority[seeded].sum() - priority[best].sum()) <= _SAME_PRIORITY else best


def _search(
    *,
    travel_s: np.ndarray,
    distance_m: np.ndarray,
    priority: np.ndarray,
    dwell_s: float,
    budget_s: float,
    initial: np.ndarray | None,
    solutions: int,
    time_limit_s: float,
) -> np.ndarray:
    """One OR-Tools search (see the module docstring for the model), from ``initial`` when given.

    A block's priority is a reward on the arc into it (``top - reward``) and leaving it out costs
    ``top``: for every route that adds up to ``candidates x top - priority collected + distance``,
    the same objective as a penalty of the block's own priority for leaving it out, but guided
    local search (which penalises arcs) then trades one block for two others instead of cycling
    around the first route it found.
    """
    n = len(priority)
    manager = pywrapcp.RoutingIndexManager(n + 2, 1, [0], [1])
    routing = pywrapcp.RoutingModel(manager)
    service = np.r_[0, 0, np.full(n, dwell_s)]
    # Round walking times up, so a route the solver accepts is never longer than the budget.
    time_matrix = np.ceil(travel_s + service[:, None]).astype(np.int64)
    time_matrix[:, 0] = 0  # nothing returns to the start depot
    routing.AddDimension(routing.RegisterTransitMatrix(time_matrix.tolist()), 0, math.floor(budget_s), True, "time")
    reward = np.rint(priority * 10**PRIORITY_DECIMALS).astype(np.int64) * _PRIORITY_UNIT
    top = int(reward.max())
    cost = np.rint(distance_m).astype(np.int64) + np.r_[0, 0, top - reward][None, :]
    cost[:, 0] = 0
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(cost.tolist()))
    for k in range(n):
        routing.AddDisjunction([manager.NodeToIndex(k + 2)], top)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.guided_local_search_lambda_coefficient = _GLS_LAMBDA
    # A count of solutions, not the clock, ends the search, so the same seed gives the same route on any
    # machine; the time limit only caps it on a very large beat or a slow machine.
    params.solution_limit = solutions
    params.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    if initial is None:
        solution = routing.SolveWithParameters(params)
    else:
        routing.CloseModelWithParameters(params)
        start = routing.ReadAssignmentFromRoutes([[manager.NodeToIndex(int(k) + 2) for k in initial]], True)
        if start is None:  # cannot happen for a route the same model accepted; keep it as it is
            return initial
        solution = routing.SolveFromAssignmentWithParameters(start, params)
    if solution is None:
        return np.array([], dtype=np.int64) if initial is None else initial
    order = []
    index = solution.Value(routing.NextVar(routing.Start(0)))
    while not routing.IsEnd(index):
        order.append(manager.IndexToNode(index) - 2)
        index = solution.Value(routing.NextVar(index))
    return np.array(order, dtype=np.int64)

"""Walking routes through a beat's neglected blocks, one concern a module.

* :mod:`beatmap.routing.route`: the planned :class:`~beatmap.routing.route.Route` and its stops;
* :mod:`beatmap.routing.landmarks`: where a walk starts and ends (``LAT,LON`` or a named landmark);
* :mod:`beatmap.routing.priorities`: how much each block needs a visit, and why;
* :mod:`beatmap.routing.network`: walking distances on the street network (or straight lines);
* :mod:`beatmap.routing.solver`: the orienteering search with OR-Tools;
* :mod:`beatmap.routing.plan`: planning a route from blocks or from the store, for a beat or a
  neglected area;
* :mod:`beatmap.routing.output`: GPX, the printable card and plain text.

The package imports none of them, so a page that only names landmarks does not load the solver.
"""

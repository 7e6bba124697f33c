"""A genetic algorithm for binary linear programs (a 0/1 knapsack), and two exact solvers to check it against.

The problem of the chapter :ref:`ch-genetic-algorithms`: choose a binary vector :math:`\\mathbf x` that maximises
a linear objective :math:`\\mathbf o^\\intercal \\mathbf x` subject to one linear constraint
:math:`\\mathbf c^\\intercal \\mathbf x \\le b`. With non-negative values and weights this is the 0/1 knapsack.
The genetic algorithm (GA) keeps a *population* of solutions as the rows of a 0/1 matrix and updates all of them at
once with NumPy: roulette (fitness-proportional) selection among the feasible rows, uniform crossover, bit-flip
mutation. :func:`brute_force` enumerates all :math:`2^n` solutions of a small instance, and
:func:`dynamic_programming` solves instances with integer weights exactly in :math:`O(nb)` time.

References:
    Holland, J. H. (1975). *Adaptation in Natural and Artificial Systems*. University of Michigan Press.
    Goldberg, D. E. (1989). *Genetic Algorithms in Search, Optimization, and Machine Learning*. Addison-Wesley.
    Syswerda, G. (1989). Uniform crossover in genetic algorithms. *Proc. 3rd Int. Conf. on Genetic Algorithms*.
    Kellerer, H., Pferschy, U. & Pisinger, D. (2004). *Knapsack Problems*, chapter 2. Springer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

Array = np.ndarray

#: The largest instance :func:`brute_force` enumerates (2**22 ≈ 4 million solutions, ≈ 100 MB of bits).
MAX_BRUTE_FORCE_ITEMS = 22
#: Uniform crossover takes each gene from the first parent with this probability (the original's p ≤ 0.5).
CROSSOVER_PROBABILITY = 0.5


# --------------------------------------------------------------------------------------------------------------
# The problem
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Knapsack:
    """Maximise ``values @ x`` over binary ``x`` subject to ``weights @ x <= capacity``.

    Implements: eq-ga-knapsack

    Attributes:
        values: the objective's coefficients :math:`\\mathbf o`, shape ``(n,)``, non-negative (roulette selection
            needs non-negative fitness).
        weights: the constraint's coefficients :math:`\\mathbf c`, shape ``(n,)``, non-negative.
        capacity: the bound :math:`b`, non-negative.
    """

    values: Array
    weights: Array
    capacity: float

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=float)
        weights = np.asarray(self.weights, dtype=float)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"expected values of shape (n,) with n >= 1, got {values.shape}")
        if weights.shape != values.shape:
            raise ValueError(f"expected weights of shape {values.shape} (one per value), got {weights.shape}")
        if not (np.isfinite(values).all() and np.isfinite(weights).all()) or (values < 0).any() or (weights < 0).any():
            raise ValueError("expected finite, non-negative values and weights")
        if not np.isfinite(self.capacity) or self.capacity < 0:
            raise ValueError(f"expected a finite, non-negative capacity, got {self.capacity!r}")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "capacity", float(self.capacity))

    @property
    def num_items(self) -> int:
        return self.values.size

    def _check(self, solutions: Array) -> Array:
        solutions = np.asarray(solutions)
        if solutions.shape[-1:] != (self.num_items,) or solutions.ndim > 2:
            raise ValueError(f"expected solutions of shape ({self.num_items},) or (k, {self.num_items}), "
                             f"got {solutions.shape}")
        return solutions

    def objective(self, solutions: Array) -> Array:
        """:math:`\\mathbf o^\\intercal\\mathbf x` for one solution ``(n,)`` or each row of ``(k, n)``."""
        return self._check(solutions) @ self.values

    def load(self, solutions: Array) -> Array:
        """:math:`\\mathbf c^\\intercal\\mathbf x` for one solution or each row."""
        return self._check(solutions) @ self.weights

    def is_feasible(self, solutions: Array) -> Array:
        """Whether :math:`\\mathbf c^\\intercal\\mathbf x \\le b` (*less than or equal*: a full knapsack is fine)."""
        return self.load(solutions) <= self.capacity


def random_knapsack(num_items: int, seed: int, max_value: int = 100, max_weight: int = 100,
                    capacity_fraction: float = 0.5) -> Knapsack:
    """A random *uncorrelated* instance: integer values in ``[1, max_value]`` and weights in ``[1, max_weight]``,
    drawn independently, and a capacity that is a fraction of the total weight (rounded down).

    Independent values and weights fit the original's airline example (a flight's profit and the resources it
    uses are unrelated); Kellerer et al. (2004, §15.1) call this the uncorrelated class.

    Raises:
        ValueError: on a non-positive size or bound, or a capacity fraction outside (0, 1].
    """
    if num_items < 1 or max_value < 1 or max_weight < 1:
        raise ValueError(f"expected num_items, max_value and max_weight >= 1, got {num_items}, {max_value}, "
                         f"{max_weight}")
    if not 0 < capacity_fraction <= 1:
        raise ValueError(f"expected 0 < capacity_fraction <= 1, got {capacity_fraction}")
    rng = np.random.default_rng(seed)
    values = rng.integers(1, max_value + 1, size=num_items)
    weights = rng.integers(1, max_weight + 1, size=num_items)
    return Knapsack(values, weights, float(np.floor(capacity_fraction * weights.sum())))


# --------------------------------------------------------------------------------------------------------------
# Exact solvers
# --------------------------------------------------------------------------------------------------------------


def all_solutions(num_items: int) -> Array:
    """Every binary vector of length ``num_items``, one per row, ``(2**num_items, num_items)`` uint8.

    Row ``r`` is the binary expansion of ``r`` (item ``i`` is bit ``i``).
    """
    if not 1 <= num_items <= MAX_BRUTE_FORCE_ITEMS:
        raise ValueError(f"expected 1 <= num_items <= {MAX_BRUTE_FORCE_ITEMS} for enumeration, got {num_items}")
    codes = np.arange(2**num_items, dtype=np.int64)[:, None]
    return ((codes >> np.arange(num_items)) & 1).astype(np.uint8)


def brute_force(problem: Knapsack) -> tuple[Array, float]:
    """The optimum by enumeration of all :math:`2^n` solutions (ties: the smallest binary code).

    Implements: eq-ga-knapsack

    Returns:
        ``(solution, value)``: the best feasible 0/1 vector and its objective. The empty knapsack is always
        feasible, so there is always an answer.

    Raises:
        ValueError: if the instance has more than ``MAX_BRUTE_FORCE_ITEMS`` items.
    """
    candidates = all_solutions(problem.num_items)
    scores = np.where(problem.is_feasible(candidates), problem.objective(candidates), -np.inf)
    best = int(np.argmax(scores))
    return candidates[best], float(scores[best])


def dynamic_programming(problem: Knapsack) -> tuple[Array, float]:
    """The optimum of an instance with integer weights and capacity, by dynamic programming over the load.

    ``best[w]`` is the largest value that fits in load ``w`` using the items seen so far; adding item ``i``
    gives ``best'[w] = max(best[w], best[w - c_i] + o_i)`` (Bellman's recursion, Kellerer et al., 2004, §2.3),
    one vectorised update per item. A table of the choices recovers the solution backwards.
    Time and memory are :math:`O(n\\,b)`.

    Implements: eq-ga-dp

    Returns:
        ``(solution, value)``.

    Raises:
        ValueError: if a weight or the capacity is not an integer.
    """
    weights = problem.weights
    if not np.array_equal(weights, np.round(weights)) or problem.capacity != round(problem.capacity):
        raise ValueError("dynamic_programming needs integer weights and capacity; got "
                         f"weights {weights[:5]}..., capacity {problem.capacity}")
    weights = weights.astype(np.int64)
    capacity = int(problem.capacity)
    best = np.zeros(capacity + 1)
    taken = np.zeros((problem.num_items, capacity + 1), dtype=bool)
    for i, (weight, value) in enumerate(zip(weights, problem.values)):
        if weight > capacity:
            continue
        with_item = best[: capacity + 1 - weight] + value
        taken[i, weight:] = with_item > best[weight:]
        best[weight:] = np.maximum(best[weight:], with_item)
    solution = np.zeros(problem.num_items, dtype=np.uint8)
    load = capacity
    for i in range(problem.num_items - 1, -1, -1):
        if taken[i, load]:
            solution[i] = 1
            load -= weights[i]
    return solution, float(best[capacity])


# --------------------------------------------------------------------------------------------------------------
# The genetic algorithm
# --------------------------------------------------------------------------------------------------------------


def initial_population(population_size: int, num_items: int, rng: np.random.Generator,
                       probability: float = 0.5) -> Array:
    """``(population_size, num_items)`` random 0/1 solutions, each bit 1 with ``probability``."""
    if population_size < 1 or num_items < 1:
        raise ValueError(f"expected a positive population size and item count, got {population_size}, {num_items}")
    if not 0 <= probability <= 1:
        raise ValueError(f"expected 0 <= probability <= 1, got {probability}")
    return (rng.random((population_size, num_items)) < probability).astype(np.uint8)


def roulette_probabilities(fitness: Array, feasible: Array) -> Array:
    """Selection probabilities proportional to fitness among the feasible solutions, zero for the rest.

    If every feasible solution has zero fitness, they are equally likely.

    Implements: eq-ga-roulette

    Raises:
        ValueError: if no solution is feasible, or some feasible fitness is negative.
    """
    fitness = np.asarray(fitness, dtype=float)
    feasible = np.asarray(feasible, dtype=bool)
    if fitness.shape != feasible.shape:
        raise ValueError(f"expected fitness and feasible of the same shape, got {fitness.shape} and {feasible.shape}")
    if not feasible.any():
        raise ValueError("roulette selection needs at least one feasible solution, got none")
    if (fitness[feasible] < 0).any():
        raise ValueError("roulette selection needs non-negative fitness")
    weights = np.where(feasible, fitness, 0.0)
    total = weights.sum()
    return weights / total if total > 0 else feasible / feasible.sum()


def windowed_fitness(objective: Array, feasible: Array) -> Array:
    """The objective minus the worst feasible objective of the generation (*windowing*, Goldberg 1989, §3.4).

    Raw objectives of a population often differ by a few tens of percent, so roulette selection on them barely
    prefers the best. Subtracting the minimum keeps the order but makes the differences count: the worst feasible
    solution is never chosen and the best is chosen most often.

    Implements: eq-ga-window
    """
    objective = np.asarray(objective, dtype=float)
    feasible = np.asarray(feasible, dtype=bool)
    if not feasible.any():
        return np.zeros_like(objective)
    return np.where(feasible, objective - objective[feasible].min(), 0.0)


def uniform_crossover(first: Array, second: Array, rng: np.random.Generator) -> Array:
    """Children whose every gene comes from ``first`` with probability 1/2, else from ``second`` (row by row).

    Implements: eq-ga-crossover
    """
    if first.shape != second.shape:
        raise ValueError(f"expected parents of the same shape, got {first.shape} and {second.shape}")
    return np.where(rng.random(first.shape) < CROSSOVER_PROBABILITY, first, second)


def mutate(population: Array, rate: float, rng: np.random.Generator) -> Array:
    """Flip each bit independently with probability ``rate`` (returns a new array)."""
    if not 0 <= rate <= 1:
        raise ValueError(f"expected a mutation rate in [0, 1], got {rate}")
    return population ^ (rng.random(population.shape) < rate).astype(population.dtype)


#: How :func:`next_generation` turns objectives into selection weights.
SELECTIONS = ("roulette", "windowed")


@dataclasses.dataclass(frozen=True)
class GAParameters:
    """The genetic algorithm's knobs.

    Attributes:
        population_size: solutions per generation (at least 2).
        num_generations: how many times :func:`next_generation` is applied.
        mutation_rate: the probability that mutation flips a bit.
        elitism: best feasible solutions copied unchanged into the next generation (0 in the original).
        selection: ``"roulette"`` (probability proportional to the objective, as in the original) or
            ``"windowed"`` (proportional to :func:`windowed_fitness`).
        init_probability: the probability of a 1 in the initial solutions.
    """

    population_size: int = 100
    num_generations: int = 300
    mutation_rate: float = 0.005
    elitism: int = 0
    selection: str = "roulette"
    init_probability: float = 0.5

    def __post_init__(self) -> None:
        if self.population_size < 2 or self.num_generations < 0:
            raise ValueError(f"expected population_size >= 2 and num_generations >= 0, got {self.population_size}, "
                             f"{self.num_generations}")
        if not 0 <= self.elitism < self.population_size:
            raise ValueError(f"expected 0 <= elitism < population_size, got {self.elitism}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"expected selection in {SELECTIONS}, got {self.selection!r}")
        if not 0 <= self.mutation_rate <= 1 or not 0 <= self.init_probability <= 1:
            raise ValueError(f"expected probabilities in [0, 1], got mutation_rate={self.mutation_rate}, "
                             f"init_probability={self.init_probability}")


def next_generation(problem: Knapsack, population: Array, params: GAParameters, rng: np.random.Generator) -> Array:
    """One generation: evaluate, mate, replace the infeasible, mutate.

    - With at least two feasible solutions, each feasible solution is replaced by its child with a mate drawn
      by roulette, and each infeasible one by the child of two parents drawn by roulette.
    - With fewer than two, the feasible solution (if any) is kept and the infeasible ones are replaced by fresh
      random solutions.
    - Every child is then mutated. The ``params.elitism`` best feasible solutions are copied into the next
      generation unchanged, in place of the first children.
    """
    objective = problem.objective(population)
    feasible = problem.is_feasible(population)
    feasible_rows, infeasible_rows = np.flatnonzero(feasible), np.flatnonzero(~feasible)
    children = population.copy()
    if feasible_rows.size >= 2:
        fitness = windowed_fitness(objective, feasible) if params.selection == "windowed" else objective
        probabilities = roulette_probabilities(fitness, feasible)
        mates = rng.choice(len(population), size=feasible_rows.size, p=probabilities)
        children[feasible_rows] = uniform_crossover(population[feasible_rows], population[mates], rng)
        parents = rng.choice(len(population), size=(2, infeasible_rows.size), p=probabilities)
        children[infeasible_rows] = uniform_crossover(population[parents[0]], population[parents[1]], rng)
    elif infeasible_rows.size:
        children[infeasible_rows] = initial_population(
            infeasible_rows.size, problem.num_items, rng, params.init_probability
        )
    children = mutate(children, params.mutation_rate, rng)
    if params.elitism and feasible_rows.size:
        elite = feasible_rows[np.argsort(-objective[feasible_rows], kind="stable")[: params.elitism]]
        children[: elite.size] = population[elite]
    return children


@dataclasses.dataclass(frozen=True)
class GAResult:
    """What :func:`genetic_algorithm` found, with one entry per generation (generation 0 is the initial one).

    Attributes:
        best_solution, best_value: the best *feasible* solution seen in any generation and its objective.
        best_per_generation: the best feasible objective in each generation's population (NaN if none).
        mean_per_generation: the mean objective of each generation's feasible solutions (NaN if none).
        best_so_far: the best feasible objective met up to each generation (0, the empty knapsack, before any).
        feasible_fraction: the fraction of each population that is feasible.
    """

    best_solution: Array
    best_value: float
    best_per_generation: Array
    mean_per_generation: Array
    best_so_far: Array
    feasible_fraction: Array


def genetic_algorithm(problem: Knapsack, params: GAParameters, seed: int) -> GAResult:
    """Run the genetic algorithm and return the best feasible solution it ever met.

    Args:
        problem: the instance.
        params: population size, generations, mutation rate, elitism and selection.
        seed: seeds NumPy's generator, so a run is repeatable.

    Returns:
        A :class:`GAResult`. It never holds an infeasible solution: if no feasible solution was ever met, the
        answer is the empty knapsack, which is always feasible.
    """
    rng = np.random.default_rng(seed)
    population = initial_population(params.population_size, problem.num_items, rng, params.init_probability)
    best_solution, best_value = np.zeros(problem.num_items, dtype=np.uint8), 0.0
    best, mean, fraction = [], [], []
    for generation in range(params.num_generations + 1):
        if generation > 0:
            population = next_generation(problem, population, params, rng)
        objective, feasible = problem.objective(population), problem.is_feasible(population)
        fraction.append(feasible.mean())
        if not feasible.any():
            best.append(np.nan)
            mean.append(np.nan)
            continue
        leader = np.flatnonzero(feasible)[np.argmax(objective[feasible])]
        best.append(objective[leader])
        mean.append(objective[feasible].mean())
        if objective[leader] > best_value:
            best_solution, best_value = population[leader].copy(), float(objective[leader])
    best = np.array(best)
    return GAResult(best_solution, best_value, best, np.array(mean), np.fmax.accumulate(np.nan_to_num(best)),
                    np.array(fraction))


def optimality_gap(found: float, optimum: float) -> float:
    """The relative shortfall ``(optimum - found) / optimum`` (0 when the optimum is found or is 0)."""
    return 0.0 if optimum == 0 else (optimum - found) / optimum


# --------------------------------------------------------------------------------------------------------------
# The chapter's settings
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GeneticSettings:
    """Sizes of the chapter's runs (one instance per profile)."""

    small_items: int = 15
    large_items: int = 100
    population_size: int = 100
    num_generations: int = 300
    mutation_rate: float = 0.005
    num_seeds: int = 5


SETTINGS: dict[str, GeneticSettings] = {
    "quick": GeneticSettings(),
    "full": GeneticSettings(small_items=20, large_items=200, population_size=200, num_generations=1_000,
                            num_seeds=20),
}

"""Tests of mlbook.genetic: the knapsack, the exact solvers against each other, the genetic algorithm's operators
and guarantees, and one regression test per item of the chapter's "Notes on the original"."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from mlbook import genetic as ga
from mlbook.profiles import PROFILES, select

#: The original's objective o = (1, 2, 3), with a weight vector and bound chosen so that the optimum fills the
#: knapsack exactly: x = (0, 1, 1) has load 2 + 4 = 6 = b and value 5.
TINY = ga.Knapsack(values=[1, 2, 3], weights=[3, 2, 4], capacity=6)


def exhaustive_optimum(problem: ga.Knapsack) -> float:
    """The optimum by a plain Python loop over itertools.product: independent of all_solutions' bit tricks."""
    best = 0.0
    for bits in itertools.product((0, 1), repeat=problem.num_items):
        x = np.array(bits)
        if x @ problem.weights <= problem.capacity:
            best = max(best, float(x @ problem.values))
    return best


# ---- the problem ---------------------------------------------------------------------------------------------


def test_objective_and_load_are_the_dot_products():
    population = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(TINY.objective(population), [4, 5, 6])
    np.testing.assert_array_equal(TINY.load(population), [7, 6, 9])
    assert TINY.objective(np.array([0, 1, 0])) == 2


@pytest.mark.equation("eq-ga-knapsack")
def test_constraint_is_less_or_equal_not_strict():
    """Regression: the original tested ``np.dot(x, c) < ub``, so a knapsack filled exactly was 'infeasible' and the
    optimum of TINY (load 6 = b) was missed. The maths, and this package, say c·x ≤ b."""
    assert TINY.is_feasible(np.array([0, 1, 1]))
    assert not TINY.is_feasible(np.array([1, 1, 1]))
    solution, value = ga.brute_force(TINY)
    np.testing.assert_array_equal(solution, [0, 1, 1])
    assert value == 5.0  # with a strict "<" the best would be 3
    result = ga.genetic_algorithm(TINY, ga.GAParameters(population_size=10, num_generations=20), seed=0)
    assert result.best_value == 5.0


@pytest.mark.parametrize(
    "kwargs, message",
    [({"values": [1, 2], "weights": [1, 2, 3], "capacity": 3}, r"weights of shape \(2,\)"),
     ({"values": [[1, 2]], "weights": [[1, 2]], "capacity": 3}, r"values of shape \(n,\)"),
     ({"values": [1, -2], "weights": [1, 2], "capacity": 3}, "non-negative"),
     ({"values": [1, 2], "weights": [1, 2], "capacity": -1}, "capacity")],
)
def test_knapsack_rejects_bad_input_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ga.Knapsack(**kwargs)


def test_objective_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"expected solutions of shape \(3,\) or \(k, 3\), got \(2, 4\)"):
        TINY.objective(np.zeros((2, 4)))


def test_random_knapsack_is_repeatable_and_in_range():
    first, second = ga.random_knapsack(50, seed=3), ga.random_knapsack(50, seed=3)
    np.testing.assert_array_equal(first.values, second.values)
    assert first.values.min() >= 1 and first.values.max() <= 100
    assert first.weights.min() >= 1 and first.weights.max() <= 100
    assert first.capacity == np.floor(0.5 * first.weights.sum())


# ---- exact solvers -------------------------------------------------------------------------------------------


def test_all_solutions_enumerates_every_binary_vector_once():
    solutions = ga.all_solutions(4)
    assert solutions.shape == (16, 4)
    assert len({tuple(row) for row in solutions}) == 16
    np.testing.assert_array_equal(solutions[5], [1, 0, 1, 0])  # 5 = 1 + 4: items 0 and 2


@pytest.mark.equation("eq-ga-knapsack")
def test_brute_force_matches_a_plain_loop():
    for seed in range(5):
        problem = ga.random_knapsack(8, seed=seed)
        solution, value = ga.brute_force(problem)
        assert value == exhaustive_optimum(problem)
        assert problem.is_feasible(solution) and problem.objective(solution) == value


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.equation("eq-ga-dp")
def test_dynamic_programming_matches_brute_force(seed):
    problem = ga.random_knapsack(12, seed=seed, max_weight=30, capacity_fraction=0.4)
    dp_solution, dp_value = ga.dynamic_programming(problem)
    _, bf_value = ga.brute_force(problem)
    assert dp_value == bf_value  # integers: exact
    assert problem.is_feasible(dp_solution)
    assert problem.objective(dp_solution) == dp_value  # the backtracked solution achieves the table's value


def test_dynamic_programming_handles_items_heavier_than_the_capacity():
    problem = ga.Knapsack(values=[10, 1, 2], weights=[9, 1, 2], capacity=3)
    solution, value = ga.dynamic_programming(problem)
    np.testing.assert_array_equal(solution, [0, 1, 1])
    assert value == 3.0


def test_dynamic_programming_needs_integer_weights():
    with pytest.raises(ValueError, match="integer weights"):
        ga.dynamic_programming(ga.Knapsack(values=[1, 2], weights=[0.5, 1], capacity=1))


def test_brute_force_refuses_large_instances():
    with pytest.raises(ValueError, match=f"num_items <= {ga.MAX_BRUTE_FORCE_ITEMS}"):
        ga.brute_force(ga.random_knapsack(ga.MAX_BRUTE_FORCE_ITEMS + 1, seed=0))


# ---- operators -----------------------------------------------------------------------------------------------


@pytest.mark.equation("eq-ga-roulette")
def test_roulette_probabilities_are_proportional_among_feasible_solutions():
    probabilities = ga.roulette_probabilities(np.array([1.0, 2.0, 3.0, 10.0]), np.array([True, True, True, False]))
    np.testing.assert_allclose(probabilities, [1 / 6, 2 / 6, 3 / 6, 0.0], rtol=1e-15)  # one rounding each


def test_roulette_with_zero_fitness_is_uniform_over_feasible_and_needs_one():
    np.testing.assert_array_equal(ga.roulette_probabilities(np.zeros(3), np.array([True, False, True])),
                                  [0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="at least one feasible"):
        ga.roulette_probabilities(np.ones(3), np.zeros(3, dtype=bool))


def test_roulette_sampling_frequencies():
    """``rng.choice(p=...)`` replaces the original's hand-made CDF search; check the frequencies it gives."""
    probabilities = ga.roulette_probabilities(np.array([1.0, 3.0, 0.0, 6.0]), np.ones(4, dtype=bool))
    draws = np.random.default_rng(0).choice(4, size=100_000, p=probabilities)
    frequencies = np.bincount(draws, minlength=4) / draws.size
    # Binomial standard error is at most sqrt(0.25 / 1e5) = 0.0016; 0.01 is over six of them.
    np.testing.assert_allclose(frequencies, [0.1, 0.3, 0.0, 0.6], atol=0.01)


@pytest.mark.equation("eq-ga-window")
def test_windowed_fitness_subtracts_the_worst_feasible_value():
    fitness = ga.windowed_fitness(np.array([10.0, 12.0, 15.0, 99.0]), np.array([True, True, True, False]))
    np.testing.assert_array_equal(fitness, [0.0, 2.0, 5.0, 0.0])


@pytest.mark.equation("eq-ga-crossover")
def test_uniform_crossover_takes_each_gene_from_a_parent_about_half_the_time():
    rng = np.random.default_rng(0)
    first, second = np.zeros((200, 100), dtype=np.uint8), np.ones((200, 100), dtype=np.uint8)
    children = ga.uniform_crossover(first, second, rng)
    # Every gene comes from one parent; with 0/1 parents the mean is the share taken from the second parent.
    # Its standard error over 20,000 genes is 0.0035, so 0.02 is over five of them.
    assert abs(children.mean() - (1 - ga.CROSSOVER_PROBABILITY)) < 0.02
    parents = rng.integers(0, 2, size=(2, 50, 30))
    children = ga.uniform_crossover(parents[0], parents[1], rng)
    assert ((children == parents[0]) | (children == parents[1])).all()


def test_mutation_flips_bits_at_the_given_rate():
    """Regression: the original called an undefined ``mutate()``; its ``random_mutation_1D(p)`` *reset* a bit to a
    random value, which flips it only half the time (rate p / 2). Here each bit flips with probability p."""
    rng = np.random.default_rng(0)
    population = rng.integers(0, 2, size=(1_000, 100)).astype(np.uint8)
    mutated = ga.mutate(population, 0.05, rng)
    flip_rate = (mutated != population).mean()
    # Standard error sqrt(0.05 · 0.95 / 1e5) = 0.0007; 0.004 is over five of them, and far from p / 2 = 0.025.
    assert abs(flip_rate - 0.05) < 0.004
    assert mutated.dtype == population.dtype and set(np.unique(mutated)) <= {0, 1}
    np.testing.assert_array_equal(ga.mutate(population, 0.0, rng), population)


def test_infeasible_solutions_are_replaced_by_children_of_feasible_parents():
    """Regression: the original mated only when ``len(working_soln_ind) <= 2`` — the test was reversed, so with
    three or more feasible solutions every infeasible one was replaced by a *random* solution instead."""
    problem = ga.Knapsack(values=np.ones(6), weights=np.ones(6), capacity=2)
    population = np.array([[1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0],  # feasible, gene 0 set
                           [0, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]], dtype=np.uint8)  # infeasible, gene 0 clear
    params = ga.GAParameters(population_size=5, mutation_rate=0.0)
    for seed in range(20):
        children = ga.next_generation(problem, population, params, np.random.default_rng(seed))
        # Every feasible parent has gene 0 set, and genes 2-5 clear: so must every child. A random replacement
        # (the bug) would clear gene 0 or set genes 2-5 with probability 1 - 1/32 each.
        assert (children[:, 0] == 1).all() and (children[:, 2:] == 0).all()


def test_with_fewer_than_two_feasible_solutions_the_infeasible_are_resampled():
    problem = ga.Knapsack(values=np.ones(40), weights=np.ones(40), capacity=1)
    population = np.ones((6, 40), dtype=np.uint8)
    population[0] = 0  # the only feasible solution
    children = ga.next_generation(problem, population, ga.GAParameters(6, mutation_rate=0.0),
                                  np.random.default_rng(0))
    np.testing.assert_array_equal(children[0], population[0])  # kept
    assert children[1:].mean() < 0.75  # fresh random rows: about half ones, not the all-ones parents


def test_elitism_keeps_the_best_feasible_solution_unchanged():
    problem = ga.random_knapsack(30, seed=1)
    rng = np.random.default_rng(0)
    population = ga.initial_population(20, 30, rng, probability=0.3)
    feasible = problem.is_feasible(population)
    best = population[feasible][np.argmax(problem.objective(population[feasible]))]
    params = ga.GAParameters(population_size=20, mutation_rate=0.2, elitism=1)
    children = ga.next_generation(problem, population, params, rng)
    np.testing.assert_array_equal(children[0], best)


# ---- the algorithm -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("selection", ga.SELECTIONS)
def test_the_ga_never_returns_an_infeasible_solution(selection):
    # Tight capacities make most random solutions infeasible: the hard case for this guarantee.
    for seed in range(6):
        problem = ga.random_knapsack(25, seed=seed, capacity_fraction=0.1)
        params = ga.GAParameters(population_size=20, num_generations=30, mutation_rate=0.05, selection=selection)
        result = ga.genetic_algorithm(problem, params, seed=seed)
        assert problem.is_feasible(result.best_solution)
        assert problem.objective(result.best_solution) == result.best_value
        assert result.best_value <= ga.dynamic_programming(problem)[1]
        assert (np.diff(result.best_so_far) >= 0).all()


def test_the_ga_with_no_feasible_start_returns_the_empty_knapsack():
    problem = ga.Knapsack(values=np.ones(20), weights=np.ones(20), capacity=0)
    params = ga.GAParameters(population_size=10, num_generations=3, init_probability=1.0, mutation_rate=0.0)
    result = ga.genetic_algorithm(problem, params, seed=0)
    np.testing.assert_array_equal(result.best_solution, np.zeros(20))
    assert result.best_value == 0.0 and np.isnan(result.best_per_generation[0])


@pytest.mark.parametrize("instance", range(5))
def test_the_ga_finds_the_brute_force_optimum_on_small_instances(instance):
    problem = ga.random_knapsack(10, seed=100 + instance)
    params = ga.GAParameters(population_size=50, num_generations=100, selection="windowed", elitism=1)
    result = ga.genetic_algorithm(problem, params, seed=0)
    assert result.best_value == ga.brute_force(problem)[1]


def test_the_ga_is_repeatable_from_its_seed():
    problem = ga.random_knapsack(40, seed=0)
    params = ga.GAParameters(population_size=30, num_generations=20)
    first, second = ga.genetic_algorithm(problem, params, 7), ga.genetic_algorithm(problem, params, 7)
    np.testing.assert_array_equal(first.best_per_generation, second.best_per_generation)


def test_windowing_and_elitism_close_the_gap_on_a_larger_instance():
    """The chapter's claim: on 100 items the original scheme stalls well short of the optimum, and windowed
    selection with elitism gets much closer (means over three seeds, to damp the luck of a single run)."""
    problem = ga.random_knapsack(100, seed=2)
    optimum = ga.dynamic_programming(problem)[1]
    base = ga.GAParameters(population_size=60, num_generations=150)

    def mean_gap(params: ga.GAParameters) -> float:
        return float(np.mean([ga.optimality_gap(ga.genetic_algorithm(problem, params, s).best_value, optimum)
                              for s in range(3)]))

    original = mean_gap(base)
    improved = mean_gap(dataclasses.replace(base, selection="windowed", elitism=2))
    assert 0 <= improved < original / 2


def test_optimality_gap():
    assert ga.optimality_gap(90.0, 100.0) == pytest.approx(0.1)
    assert ga.optimality_gap(0.0, 0.0) == 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [({"population_size": 1}, "population_size >= 2"), ({"elitism": 100}, "elitism < population_size"),
     ({"selection": "tournament"}, "selection in"), ({"mutation_rate": 1.5}, "probabilities in")],
)
def test_parameters_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ga.GAParameters(**kwargs)


@pytest.mark.parametrize("profile", PROFILES)
def test_settings_exist_for_every_profile(profile):
    cfg = select(ga.SETTINGS, profile)
    assert cfg.small_items <= ga.MAX_BRUTE_FORCE_ITEMS

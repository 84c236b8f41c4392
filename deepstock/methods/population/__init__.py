"""The population engine: many members of one method (a member = one configuration + one seed)
trained together as one batched computation (:mod:`deepstock.methods.population.batched` holds
the shared building blocks)."""

"""The render steps as plain functions of (context, ids): ingest → render batches → assemble.

Each step is idempotent: it checks state, claims with an atomic update (lease + attempt count),
writes results under deterministic keys, then marks done. Executors call them by name.
"""
STEP_INGEST = "render_farm.steps.ingest:ingest"
STEP_RENDER = "render_farm.steps.render:render_batch"
STEP_ASSEMBLE = "render_farm.steps.assemble:assemble"

"""What every spec (data, task, suite, train, study) is built on.

- `base`: `Strict`, the pydantic base of every spec model (an unknown key is an error);
- `specfile`: reading a spec YAML with its line numbers, and pydantic errors as located `InputError`s;
- `paths`: the one rule for relative paths (against the spec file that names them);
- `overrides`: `key=value` / `TASK:key=value` parsing, merging, and the inverse;
- `legacy`: the old spec forms, rewritten to the new ones with a deprecation notice (one release).

Each spec kind's models live with its stage (the source shapes data and task specs share in
`sftscope.data.source_shapes`); sources, transforms, scorers, adapters and executors are told apart
by their `kind:` field (pydantic discriminated unions). This package imports no stage.
"""

"""What every stage shares and none owns: the process group (`dist`), data sharding and seeded sampling
(`sampling`) and checkpoint files (`checkpoint`). It imports no other seg_uda package, so that the engine,
evaluation and open-set code can all use it without importing each other."""

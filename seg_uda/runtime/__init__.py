"""What every stage shares and none owns: the process group (`dist`), data sharding and seeded sampling
(`sampling`), checkpoint files (`checkpoint`) and `torch.compile` with an eager fallback (`compile`). It imports
no other seg_uda package, so that the engine, evaluation and open-set code can all use it without importing each
other."""

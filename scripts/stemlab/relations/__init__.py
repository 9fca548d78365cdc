"""Track relationships (Bujard et al., AIMC 2025): perception codebook -> decision transformer -> factor
oracle generation. Tasks: codebook_task (models.relations_codebook), task (models.relations)."""

"""The model wing: RobustFineTuneModule, its backbones (the study's zoo, checkpoint formats, export),
losses, adaptation protocols, epsilon schedules and optimizer groups."""

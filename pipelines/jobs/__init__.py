"""The jobs a user runs: each builds its pipeline from the stage libraries beside this package."""

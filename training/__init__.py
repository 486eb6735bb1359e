"""Training package: rebuilds every model the app serves from FER-2013 / FER+ (`python -m training --help`).

Import light: the CLI imports PyTorch only for the commands that train. What serving shares with
training (labels, cards, preprocessing, running a card) lives in `model_core/`.
"""

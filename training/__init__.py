"""Training package: rebuilds every model the app serves from FER-2013 / FER+ (`python -m training --help`).

Import light: `training.preprocess` is used by the app and must not pull in Keras.
"""

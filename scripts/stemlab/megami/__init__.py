"""MEGAMI automatic mixing: FxProcessor (dry stem + FX conditioning → wet stem); more parts to come."""

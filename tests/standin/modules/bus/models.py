"""What the stand-in's bus declares, read (never run) to know that installing
it creates or updates tables."""


class Models:
    _name = 'bus.bus'

"""What the stand-in's mail declares, read (never run) to know that installing
it creates or updates tables."""


class Models:
    _name = 'mail.template'

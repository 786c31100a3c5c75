"""What the stand-in's web_tour declares, read (never run) to know that installing
it creates or updates tables."""


class Models:
    _name = 'web_tour.tour'

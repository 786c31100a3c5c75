{
    "name": "Hello Board",
    "summary": "Boards that gather notes",
    "version": "17.0.1.0.0",
    "license": "LGPL-3",
    "depends": ["hello_notes"],
    "data": [
        "security/ir.model.access.csv",
        "views/board_views.xml",
    ],
    "installable": True,
}

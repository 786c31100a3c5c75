{
    "name": "Hello Notes",
    "summary": "Notes that count their words",
    "version": "17.0.1.0.0",
    "license": "LGPL-3",
    "depends": ["mail"],
    "data": [
        "security/ir.model.access.csv",
        "views/note_views.xml",
    ],
    "demo": ["demo/notes.xml"],
    "installable": True,
    "application": True,
}

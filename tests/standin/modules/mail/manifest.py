{
    'name': 'Discuss',
    'version': '1.15',
    'category': 'Productivity/Discuss',
    'sequence': 145,
    'summary': 'Chat, mail gateway and private channels',
    'depends': ['base', 'base_setup', 'bus', 'web_tour'],
    'data': [
        'data/ir_cron_data.xml',
    ],
    'installable': True,
    'application': True,
    'license': 'LGPL-3',
}

"""The login itself, the same whichever front door calls it.

Lives here: the scene's state machine (`scenes`), the phone's one-code-one-step ledger
(`steps`), drawing a scene's code once (`codes`), avatars, the profile from plain or encrypted
fields (`profile`), the waiting polls' wake-ups (`notify`), what a scan shows the phone
(`context`) and the operations every front door calls (`operations`: start a login, its code,
wait for it to move, claim, confirm, deny, attach an avatar, log a browser in).

May import: `wechat`, `storage` and the base modules; never `http` or `ops`.
"""

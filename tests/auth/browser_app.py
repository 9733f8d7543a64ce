"""A minimal Dash app behind dashboard.auth, for the browser test: a graph, an input and a
callback, so Dash's real renderer, Plotly and assets/csrf.js run under our CSP and CSRF rules.
Served by gunicorn (`browser_app:create()`); the user store and secret come from the environment."""

from __future__ import annotations

from pathlib import Path

import dash
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from dashboard.auth import init_auth

REPO = Path(__file__).resolve().parents[2]


def create():
    app = dash.Dash(__name__, assets_folder=str(REPO / "assets"))
    app.layout = html.Main(
        [
            html.Label("Text", htmlFor="inp"),
            dcc.Input(id="inp", value="a"),
            html.Div(id="out"),
            dcc.Graph(id="graph", figure=go.Figure(go.Bar(x=["a", "b"], y=[10, 20]))),
        ]
    )

    @app.callback(Output("out", "children"), Input("inp", "value"))
    def echo(value):
        return f"echo {value}"

    init_auth(app.server)
    return app.server

from django.urls import path

from acme import views

urlpatterns = [
    path("", views.home),
    path("media-upload", views.uploads),
    path("bookings", views.bookings),
    path("bookings/<int:pk>", views.booking),
    path("portal", views.portal),
    path("login", views.login),
    path("dashboard", views.dashboard),
    path("_fault", views.fault),
]
